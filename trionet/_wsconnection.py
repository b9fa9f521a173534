"""4D's ``WebSocketConnection`` on trio: one network task per connection, driven by the lifecycle.

The same class serves both ends: a server hands it a transport whose handshake is done; a
client (and :mod:`trionet.testing`'s in-memory client) hands it an *opener* that connects
and performs the handshake inside the network task, under the open timeout.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections import deque
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import trio

from ._channel import EventChannel, EventQueue
from ._events import ErrorCode, ErrorRecord
from ._exceptions import ConnectionClosedError, LocalProtocolError
from ._handlers import (
    WEBSOCKET_CALLBACKS,
    CallbackDispatcher,
    ChannelDispatcher,
    Dispatcher,
    HandlerFailure,
    resolve_callbacks,
)
from ._lending import LentReading
from ._transport import Transport, TransportError
from ._util import call_soon_in, current_token
from ._wsevents import (
    CloseCode,
    WebSocketEvent,
    WebSocketEventType,
    WebSocketRequest,
)
from ._wsoptions import WebSocketOptions
from ._wsproto import GATHER_FROM, FrameLayer
from ._wsstate import WSInput, WSLifecycle, WSState
from ._wstask import pull
from ._wstask import run as run_task
from ._wsvalues import Message, Termination, check_close_code, payload_of

__all__ = ["Opener", "WebSocketConnection"]

log = logging.getLogger("trionet.websocket")

#: Connects and opens a client connection: returns the transport, the frame layer, the
#: chosen subprotocol and the bytes that arrived after the handshake.
Opener = Callable[[], Awaitable[tuple[Transport, FrameLayer, "str | None", bytes]]]

_ids = itertools.count(1)
_T = WebSocketEventType
_OPEN = WSState.OPEN


class WebSocketConnection:
    """One WebSocket connection (4D ``WebSocketConnection``), server or client side.

    Server connections come from a :class:`~trionet.WebSocketServer`; clients from
    :meth:`trionet.testing.MemoryWebSocketNetwork.connect` (and the client class).  Either
    way the connection lives in a nursery owned by an ``async with`` block, and its events
    are, in order::

        open · message* · error? · terminate        (error · terminate if it never opened)

    Resource handling:
        :meth:`terminate`, the end of the owning block or cancellation starts the closing
        handshake: our close frame is sent, the peer's is awaited (messages still in
        flight are discarded), then TCP is closed, all within ``close_timeout``.

    Error handling:
        Network failures, protocol violations and exceptions raised by callbacks never
        propagate: they become the ``error`` event and entries in :attr:`errors`.
        :meth:`send` on a connection that cannot send raises
        :class:`~trionet.ConnectionClosedError`.
    """

    __slots__ = (
        "_backlog",
        "_backlog_running",
        "_close_deadline",
        "_close_requested",
        "_closed",
        "_dispatcher",
        "_errors",
        "_events",
        "_failure",
        "_frames",
        "_handler",
        "_id",
        "_idle_since",
        "_interruptible",
        "_lending",
        "_lifecycle",
        "_local_close",
        "_network_task",
        "_on_closed",
        "_opener",
        "_options",
        "_parser_failed",
        "_peer_close",
        "_ping_sending",
        "_ping_written",
        "_protocol",
        "_queue",
        "_read_scope",
        "_reading",
        "_received",
        "_request",
        "_seen",
        "_sent_close",
        "_server",
        "_spawn",
        "_token",
        "_trailing",
        "_transport",
        "_url",
    )

    def __init__(
        self,
        *,
        handler: object | None,
        options: WebSocketOptions,
        spawn: Callable[[Callable[[], Awaitable[None]]], None],
        server: Any = None,
        request: WebSocketRequest | None = None,
        transport: Transport | None = None,
        frames: FrameLayer | None = None,
        subprotocol: str | None = None,
        trailing: bytes = b"",
        opener: Opener | None = None,
        url: str = "",
        callbacks: dict[Any, tuple[str, Callable[[Any, Any], Any]]] | None = None,
    ) -> None:
        """Servers and clients create connections; there is no public constructor."""
        self._id = next(_ids)  # unique in this process
        self._handler = handler  # the user's connection handler, or None (events())
        self._options = options  # limits and timeouts
        self._spawn = spawn  # starts a short task in the owner's nursery (pings, broadcast)
        self._server = server  # the WebSocketServer that accepted us, if any
        self._request = request  # the handshake request (server side)
        self._transport = transport  # set once the handshake is done
        self._frames = frames  # wsproto framing, set with the transport
        self._protocol = subprotocol  # the negotiated subprotocol
        self._trailing = trailing  # bytes that came with the handshake
        self._opener = opener  # client side: connects and performs the handshake
        self._url = url  # client side: the URL connected to
        self._lifecycle = WSLifecycle()  # the only source of event order
        self._errors: list[ErrorRecord] = []  # every failure seen, oldest first
        self._peer_close: tuple[int, str] | None = None  # the peer's close frame
        self._sent_close: tuple[int, str] | None = None  # the close frame we sent on failure
        self._parser_failed = False  # wsproto gave up on the input: no close frame to await
        self._local_close = (int(CloseCode.NORMAL), "")  # what terminate() asked to send
        self._failure: tuple[WSInput, int, tuple[ErrorRecord, ...]] | None = None
        self._close_requested = False  # terminate(), a scope end, or the server
        self._close_deadline = math.inf  # when the closing must be over (trio clock)
        self._read_scope = trio.CancelScope()  # cancelled to stop reading and wind down
        self._interruptible = False  # the network task waits on the network or for room
        self._network_task: trio.lowlevel.Task | None = None  # runs _run
        self._token = current_token()  # lets terminate() hop in from other threads
        self._closed = trio.Event()  # the connection has terminated
        self._on_closed: Callable[[], None] | None = None  # told once it has (serve style)
        # Keepalive bookkeeping (see trionet._wsbackground): chunks received, the count the
        # last tick saw, since when nothing arrived, and the ping in flight.
        self._received = 0
        self._reading = False  # the network task waits for the peer's bytes
        self._seen = 0
        self._idle_since = 0.0
        self._ping_written: float | None = None
        self._ping_sending = False
        self._backlog: deque[Any] | None = None  # broadcast() messages waiting to go out
        self._backlog_running = False  # a task is sending the backlog
        self._queue: EventQueue[WebSocketEvent] | None = None
        self._events: EventChannel[WebSocketEvent] | None = None
        self._lending: LentReading | None = None  # events() style: see _wstask.pull
        self._dispatcher: Dispatcher
        if handler is None:
            self._queue = EventQueue[WebSocketEvent](options.max_queue, partial(pull, self))
            self._lending = LentReading(self._queue)
            self._events = EventChannel(self._queue)
            self._dispatcher = ChannelDispatcher(self._queue)
        else:
            if callbacks is None:
                callbacks = resolve_callbacks(handler, WEBSOCKET_CALLBACKS, argument="handler")
            self._dispatcher = CallbackDispatcher(callbacks)

    # -- public properties --------------------------------------------------------------

    @property
    def id(self) -> int:
        """A unique number for this connection (unique within the process)."""
        return self._id

    @property
    def handler(self) -> object | None:
        """The connection handler, or ``None`` when events go to :meth:`events`."""
        return self._handler

    @property
    def wss(self) -> Any:
        """The :class:`~trionet.WebSocketServer` that accepted this connection, or ``None``."""
        return self._server

    @property
    def status(self) -> str:
        """``"Connecting"``, ``"Connected"``, ``"Closing"`` or ``"Closed"`` (4D's names)."""
        return self._lifecycle.status

    @property
    def protocol(self) -> str | None:
        """The subprotocol agreed in the handshake, or ``None``."""
        return self._protocol

    @property
    def request(self) -> WebSocketRequest | None:
        """The handshake request (server side), or ``None``."""
        return self._request

    @property
    def url(self) -> str:
        """The URL of the request: as sent by the client (server side), or connected to."""
        return self._url or (self._request.url if self._request else "")

    @property
    def data_type(self) -> str:
        """How received messages are presented: ``"text"``, ``"blob"`` or ``"object"``."""
        return self._options.data_type

    @property
    def errors(self) -> list[ErrorRecord]:
        """Every failure seen on this connection, oldest first (a copy)."""
        return list(self._errors)

    def __repr__(self) -> str:
        return f"<WebSocketConnection id={self._id} {self.status}>"

    # -- public methods -----------------------------------------------------------------

    def events(self) -> trio.abc.ReceiveChannel[WebSocketEvent]:
        """The bounded channel of this connection's events (when it has no handler).

        ``async for event in ws.events()`` ends after the ``terminate`` event.

        Raises:
            LocalProtocolError: the connection has a handler, which receives the events.
        """
        if self._events is None:
            raise LocalProtocolError("this connection delivers its events to its handler")
        return self._events

    async def send(self, message: Message) -> None:
        """Send one message: ``str`` as text, bytes as binary, ``dict``/``list`` as JSON text.

        Returns once the frame was handed to the kernel.  Waits while the peer does not
        read, up to ``send_timeout``; past it the connection ends (close code 1008).

        Raises:
            TypeError: ``message`` has another type, or holds values JSON cannot encode.
            ConnectionClosedError: the connection can no longer send; nothing was sent.
        """
        payload = payload_of(message)
        transport = self._transport
        if self._lifecycle.state is not _OPEN or transport is None:
            raise ConnectionClosedError(self._why_closed())
        frames = self._frames
        assert frames is not None
        gate = transport.gate
        await gate.acquire()
        try:
            if not frames.can_send:
                raise ConnectionClosedError(self._why_closed())
            if len(payload) < GATHER_FROM:
                await transport.send_locked(frames.message(payload))
            else:
                await transport.send_locked(*frames.message_parts(payload))
        except TransportError as exc:
            self._transport_failed(exc)
            raise ConnectionClosedError(exc.record.message) from exc
        finally:
            gate.release()
        queue = self._queue
        if queue is not None and transport.pending:
            queue.poke()  # the network task flushes once we give up control

    def terminate(self, code: int | None = None, message: str = "") -> Termination:
        """Start the closing handshake with ``code`` (default 1000) and end the connection.

        As in 4D, ``message`` is sent as the close reason only with codes above 3000.
        Idempotent; callable from any task and from other threads.  Await the result to
        wait until the connection is closed (at most ``close_timeout``); from the
        connection's own callback it returns at once.

        Raises:
            TypeError: ``code`` is not an ``int`` or ``message`` not a ``str``.
            ValueError: ``code`` may not be sent (see RFC 6455 section 7.4).
        """
        if code is not None:
            check_close_code(code)
        if not isinstance(message, str):
            raise TypeError(f"message must be a str, not {type(message).__name__}")
        close = (code or int(CloseCode.NORMAL), message if code and code > 3000 else "")
        call_soon_in(self._token, lambda: self._request_close(close))
        return Termination(self._wait_closed)

    async def _wait_closed(self) -> None:
        if trio.lowlevel.current_task() is self._network_task:
            await trio.lowlevel.checkpoint()
            return
        await self._closed.wait()

    # -- internals: requests from other tasks -------------------------------------------

    def _why_closed(self) -> str:
        if self._errors:
            return f"the connection is closed ({self._errors[-1].message})"
        if self._lifecycle.state is WSState.CONNECTING:
            return "the connection is not open yet"
        return "the connection is closed"

    def _request_close(self, close: tuple[int, str] | None = None) -> None:
        """Start the closing handshake; it must be over within ``close_timeout`` from now."""
        if not self._close_requested:
            self._close_requested = True
            if close is not None:
                self._local_close = close
            self._close_deadline = trio.current_time() + self._options.close_timeout
        if self._lending is not None:  # reading comes back: the network task closes
            self._lending.reclaim()
        if self._interruptible:
            self._read_scope.cancel()
        else:
            # A callback running now may finish, but not past the deadline.
            self._read_scope.deadline = self._close_deadline

    def _fail_from_outside(self, kind: WSInput, code: int, record: ErrorRecord) -> None:
        """Another task saw a failure; the network task reports it and closes."""
        if record not in self._errors:
            self._record(record)
        if self._failure is None:
            self._failure = (kind, code, (record,))
        self._request_close((code, ""))

    def _transport_failed(self, exc: TransportError) -> None:
        code = (
            CloseCode.POLICY_VIOLATION
            if exc.record.err_code == ErrorCode.SEND_TIMEOUT
            else CloseCode.ABNORMAL
        )
        self._fail_from_outside(WSInput.BREAK, int(code), exc.record)

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
        """The network task (see :mod:`trionet._wstask`); never raises."""
        await run_task(self, task_status=task_status)
