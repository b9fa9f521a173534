"""4D's ``TCPConnection`` on trio: one network task per connection, driven by the lifecycle."""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any

import trio

from . import _tcptask
from ._channel import EventChannel, EventQueue
from ._events import ErrorCode, ErrorRecord, TCPEvent, TCPEventType
from ._exceptions import ConnectionClosedError, LocalProtocolError
from ._handlers import (
    CONNECTION_CALLBACKS,
    CallbackDispatcher,
    ChannelDispatcher,
    Dispatcher,
    HandlerFailure,
    resolve_callbacks,
)
from ._lending import LentReading
from ._state import Input, Lifecycle, State
from ._transport import Transport, TransportError
from ._util import (
    call_soon_in,
    check_bool,
    check_port,
    check_timeout,
    current_token,
    unwrap_body_error,
)

if TYPE_CHECKING:
    from ._listener import TCPListener

__all__ = ["EVENT_BUFFER", "PENDING_LIMIT", "TCPConnection"]

log = logging.getLogger("trionet.tcp")

# How many events the ``events()`` channel holds before the network task waits.
#
# The buffer lets the reader run a little ahead of the consumer so that one scheduler pass
# can move several chunks, which is most of the throughput gain; past a handful the gain is
# gone.  Memory is what bounds it: a consumer that stops reading pins at most
# EVENT_BUFFER x RECEIVE_SIZE bytes (1 MiB) here, plus the kernel's socket buffer, and then
# TCP flow control stops the peer.
EVENT_BUFFER = 16

# How many bytes ``send()`` queues while the connection is still being opened.
#
# 4D lets a program send before the connection is up; the bytes wait and go out, in order,
# once it is.  Without a cap a program that streams before the connect completes would
# buffer without bound, so past this much ``send()`` waits for the connect to finish.
PENDING_LIMIT = 256 * 1024

# Defaults, each a keyword argument of ``new()``.
#
# 30 s is a common connect timeout (curl's and many clients' default) and long enough for a
# SYN retry on a lossy path.  The close timeout bounds an orderly end: flushing what send()
# accepted, FIN, and waiting for the peer's FIN; 10 s matches the WebSocket close timeout
# trionet uses and covers a peer that is busy but alive, while a vanished peer costs at most
# that long before the socket is closed hard.
DEFAULT_CONNECTION_TIMEOUT = 30.0
DEFAULT_CLOSE_TIMEOUT = 10.0


class TCPConnection:
    """A TCP connection with 4D's event-driven API (4D ``TCPConnection``).

    Create one with :meth:`new` (outgoing) or receive one from a :class:`TCPListener`
    (incoming); either way it lives inside an ``async with`` block or the listener that
    accepted it, and nothing it started outlives that scope.

    Events go to the handler's callbacks when a handler is given, otherwise to
    :meth:`events`.  Every connection's events are, in order::

        connection · data* · (close | error) · terminate

    or ``error · terminate`` when the connect fails.

    Resource handling:
        Leaving the ``async with`` block, :meth:`terminate`, or cancellation ends the
        connection: what :meth:`send` accepted is flushed, FIN is sent, and the socket is
        closed, all within ``close_timeout`` (past it, the socket is closed hard).
        ``terminate`` is always the last event, and is delivered exactly once.

    Error handling:
        Network failures and exceptions raised by callbacks never propagate: they become
        the ``error`` event and entries in :attr:`errors`.  Misuse of the API raises
        :class:`~trionet.LocalProtocolError`, bad arguments ``TypeError``/``ValueError``.
    """

    def __init__(
        self,
        *,
        address: str,
        port: int,
        handler: object | None,
        no_delay: bool,
        connection_timeout: float,
        close_timeout: float,
        listener: TCPListener | None = None,
        transport: Transport | None = None,
    ) -> None:
        """Use :meth:`new`; listeners create incoming connections themselves."""
        self._address = address  # remote host as given, or the accepted peer's IP
        self._port = port  # remote port
        self._ip = address  # the peer's IP once known (events carry it)
        self._no_delay = no_delay  # TCP_NODELAY wanted
        self._connection_timeout = connection_timeout  # seconds allowed for connecting
        self._close_timeout = close_timeout  # seconds allowed for an orderly end
        self._listener = listener  # the TCPListener that accepted us, if any
        self._handler = handler  # the user's handler object, or None (events() style)
        self._lifecycle = Lifecycle()  # where we are; the only source of event order
        self._transport = transport  # the accepted connection's, or set once connected
        self._errors: list[ErrorRecord] = []  # every failure seen, oldest first
        self._pending: deque[bytes] = deque()  # bytes sent before the connection was up
        self._pending_size = 0  # total of _pending
        self._failure: tuple[ErrorRecord, ...] | None = None  # failure seen by another task
        self._close_requested = False  # terminate(), shutdown() after close, or scope end
        self._shut_down = False  # shutdown() half-closed us (explains a refused send)
        self._close_deadline = math.inf  # when the orderly end must be over (trio clock)
        self._network_task: trio.lowlevel.Task | None = None  # runs _run
        self._token = current_token()  # lets terminate() hop in from other threads
        self._read_scope = trio.CancelScope()  # cancelled to stop reading and wind down
        self._interruptible = False  # the network task waits on the network, not on users
        self._opened = trio.Event()  # the connect attempt has an outcome
        self._closed = trio.Event()  # the socket is closed (close/error delivered)
        self._consumer_done = trio.Event()  # iteration style: consumer moved past close
        self._events: EventChannel[TCPEvent] | None = None
        self._lending: LentReading | None = None  # events() style: see trionet._channel
        self._dispatcher: Dispatcher
        if handler is None:
            queue = EventQueue[TCPEvent](EVENT_BUFFER, self._pull)
            self._lending = LentReading(queue)
            self._events = EventChannel(queue, TCPEventType.CLOSE, self._consumer_done.set)
            self._dispatcher = ChannelDispatcher(queue)
        else:
            callbacks = resolve_callbacks(handler, CONNECTION_CALLBACKS, argument="handler")
            self._dispatcher = CallbackDispatcher(callbacks)

    # -- construction -------------------------------------------------------------------

    @classmethod
    def new(
        cls,
        address: str,
        port: int,
        handler: object | None = None,
        *,
        no_delay: bool = False,
        connection_timeout: float = DEFAULT_CONNECTION_TIMEOUT,
        close_timeout: float = DEFAULT_CLOSE_TIMEOUT,
    ) -> AbstractAsyncContextManager[TCPConnection]:
        """Open a connection to ``address:port`` for the duration of an ``async with`` block.

        Entering the block does not wait for the connect: the first event (``connection``,
        or ``error`` if it failed) says how it went, and :meth:`send` may be called at once.

        Args:
            address: Host name or IP address of the server.
            port: TCP port, 0..65535.
            handler: An object (or mapping) with some of ``on_connection``, ``on_data``,
                ``on_shutdown``, ``on_error``, ``on_terminate`` (or 4D's camelCase names),
                each called as ``callback(connection, event)``, sync or async.  ``None``
                delivers events to :meth:`events` instead.
            no_delay: Disable Nagle's algorithm (``TCP_NODELAY``).
            connection_timeout: Seconds allowed for resolving and connecting.
            close_timeout: Seconds allowed for an orderly end before a hard close.

        Returns:
            An async context manager yielding the :class:`TCPConnection`.

        Raises:
            TypeError: an argument has the wrong type (the message names it).
            ValueError: ``port`` is outside 0..65535 or a timeout is not positive.
        """
        if not isinstance(address, str):
            raise TypeError(f"address must be a str, not {type(address).__name__}")
        if not address:
            raise ValueError("address must not be empty")
        check_port(port)
        conn = cls(
            address=address,
            port=port,
            handler=handler,
            no_delay=check_bool(no_delay, argument="no_delay"),
            connection_timeout=check_timeout(connection_timeout, argument="connection_timeout"),
            close_timeout=check_timeout(close_timeout, argument="close_timeout"),
        )
        return conn._lifetime()

    @asynccontextmanager
    async def _lifetime(self) -> AsyncIterator[TCPConnection]:
        """Own the network task in a nursery for the span of an ``async with`` block."""
        async with unwrap_body_error(), trio.open_nursery() as nursery:
            await nursery.start(self._run)
            try:
                yield self
            finally:
                self._end_of_scope()

    def _end_of_scope(self) -> None:
        """The owning block is over: nobody reads ``events()`` any more; end orderly."""
        if self._events is not None:
            self._events.close()
        self._request_close()

    # -- public properties --------------------------------------------------------------

    @property
    def address(self) -> str:
        """The remote host, as given to :meth:`new` (name or IP) or the accepted peer's IP."""
        return self._address

    @property
    def port(self) -> int:
        """The remote port."""
        return self._port

    @property
    def closed(self) -> bool:
        """Whether the connection is closed, as the network task has observed it."""
        return self._closed.is_set()

    @property
    def errors(self) -> list[ErrorRecord]:
        """Every failure seen on this connection, oldest first (a copy)."""
        return list(self._errors)

    @property
    def listener(self) -> TCPListener | None:
        """The :class:`TCPListener` that accepted this connection, or ``None``."""
        return self._listener

    @property
    def no_delay(self) -> bool:
        """Whether Nagle's algorithm is disabled (``TCP_NODELAY``); read-only."""
        return self._no_delay

    @property
    def handler(self) -> object | None:
        """The handler object given for this connection, or ``None``."""
        return self._handler

    def __repr__(self) -> str:
        return (
            f"<TCPConnection {self._address}:{self._port} "
            f"{self._lifecycle.state.value}{' (handler)' if self._handler else ''}>"
        )

    # -- public methods -----------------------------------------------------------------

    def events(self) -> trio.abc.ReceiveChannel[TCPEvent]:
        """The bounded channel of this connection's events (when it has no handler).

        ``async for event in conn.events()`` ends after the ``terminate`` event.  After a
        ``close`` event caused by the peer, the connection stays writable until the
        consumer asks for the next event; then trionet closes our side.

        Raises:
            LocalProtocolError: the connection has a handler, which receives the events.
        """
        if self._events is None:
            raise LocalProtocolError("this connection delivers its events to its handler")
        return self._events

    async def send(self, data: bytes | bytearray | memoryview) -> None:
        """Send ``data``; returns once the kernel has accepted all of it.

        Before the connection is up, the data is queued (up to 256 KiB; past that this
        waits for the connect) and sent, in order, once it is.

        Raises:
            TypeError: ``data`` is not bytes-like.
            ConnectionClosedError: the connection can no longer send; nothing of ``data``
                was accepted.
        """
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(
                f"data must be bytes, bytearray or memoryview, not {type(data).__name__}"
            )
        lifecycle = self._lifecycle
        if lifecycle.state is State.CONNECTING:
            if self._pending_size + len(data) <= PENDING_LIMIT:
                self._pending.append(bytes(data))
                self._pending_size += len(data)
                return
            await self._opened.wait()
        if not lifecycle.can_send or self._transport is None:
            raise ConnectionClosedError(self._why_closed())
        try:
            await self._transport.send(data)
        except TransportError as exc:
            self._record(exc.record)
            self._fail_from_outside((exc.record,))
            raise ConnectionClosedError(exc.record.message) from exc

    async def shutdown(self) -> None:
        """Half-close: flush what was sent, send FIN, and keep reading until the peer closes.

        After the peer's FIN (``close`` event) this ends the connection.  Idempotent.
        """
        if self._lifecycle.state is State.CONNECTING:
            await self._opened.wait()
        state = self._lifecycle.state
        if state is State.OPEN and self._transport is not None:
            self._shut_down = True
            self._lifecycle.handle(Input.SHUTDOWN)
            try:
                await self._transport.send_eof()
            except TransportError as exc:
                self._record(exc.record)
                self._fail_from_outside((exc.record,))
        elif state is State.READ_CLOSED:
            self._request_close()

    async def wait(self, timeout: float | None = None) -> bool:  # noqa: ASYNC109 - 4D's API
        """Wait until the connection is closed, or ``timeout`` seconds have passed.

        Returns:
            Whether the connection is closed.

        Raises:
            TypeError: ``timeout`` is not a number or ``None``.
            ValueError: ``timeout`` is negative.
            LocalProtocolError: called from this connection's own callback, where it
                would wait for itself.
        """
        if timeout is not None:
            if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
                raise TypeError(f"timeout must be a number or None, not {type(timeout).__name__}")
            if timeout < 0 or math.isnan(timeout):
                raise ValueError(f"timeout must be >= 0, got {timeout!r}")
        if trio.lowlevel.current_task() is self._network_task and not self._closed.is_set():
            raise LocalProtocolError("wait() inside this connection's own callback would deadlock")
        with trio.move_on_after(math.inf if timeout is None else timeout):
            await self._closed.wait()
        return self._closed.is_set()

    def terminate(self) -> None:
        """End the connection in order (flush, FIN, close) within ``close_timeout``.

        Idempotent; callable from any task, and from other threads.  A callback running
        now is allowed to finish (within ``close_timeout``) before the connection ends.
        """
        call_soon_in(self._token, self._request_close)

    # -- internals ----------------------------------------------------------------------

    def _why_closed(self) -> str:
        if self._errors:
            return f"the connection is closed ({self._errors[-1].message})"
        if self._shut_down:
            return "the connection's sending side was shut down"
        return "the connection is closed"

    def _request_close(self) -> None:
        """Start the orderly end; it must be over within ``close_timeout`` from now."""
        if not self._close_requested:
            self._close_requested = True
            self._close_deadline = trio.current_time() + self._close_timeout
        if self._lending is not None:  # reading comes back: the network task ends it
            self._lending.reclaim()
        if self._interruptible and not (
            self._lifecycle.state is State.CONNECTING and self._pending
        ):
            self._read_scope.cancel()
        else:
            # Event delivery (a callback, or a wait for room in the events() channel) and a
            # connect with queued data are allowed to finish -- but not past the deadline.
            self._read_scope.deadline = self._close_deadline

    def _fail_from_outside(self, records: tuple[ErrorRecord, ...]) -> None:
        """Another task saw the connection fail (already recorded); the network task reports it."""
        if self._failure is None:
            self._failure = records
        self._request_close()

    def _record(self, record: ErrorRecord) -> None:
        self._errors.append(record)
        log.info("%s: %s", self, record.message)

    def _handler_failed(self, failure: HandlerFailure) -> ErrorRecord:
        record = ErrorRecord(
            err_code=ErrorCode.HANDLER_RAISED, message=str(failure), component_signature="handler"
        )
        self._errors.append(record)
        log.error("%s: %s", self, failure, exc_info=failure.__cause__)
        return record

    async def _run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """The network task (see :mod:`trionet._tcptask`); never raises."""
        await _tcptask.run(self, task_status=task_status)

    async def _pull(self) -> None:
        """The read step an ``events()`` consumer runs when reading is lent to it."""
        await _tcptask.pull(self)
