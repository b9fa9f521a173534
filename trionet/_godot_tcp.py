"""Godot's poll-driven ``StreamPeerTCP`` on trio.

Theory of operation: each connection attempt is a :class:`Link`, run by one task in the
owner's nursery (the peer's own ``async with`` block, or the :class:`~trionet.TCPServer`
that accepted it).  That task connects, then reads into the link's bounded buffer while a
writer drains what :meth:`StreamPeerTCP.put_partial_data` queued.  The network's outcome
(connected, refused, reset, the peer's FIN) is written on the link as it happens; the
status the program sees changes only when :meth:`StreamPeerTCP.poll` (or a data call that
runs into it, as Godot's ``read``/``write`` do) applies it.  Received bytes count in
:meth:`~StreamPeerTCP.get_available_bytes` as soon as they arrive.
"""

from __future__ import annotations

import contextlib
import logging
import socket
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from types import TracebackType

import trio

from ._endpoints import remote_address
from ._events import ErrorCode, ErrorRecord
from ._godot_errors import Error
from ._godot_link import (
    DEFAULT_CONNECT_TIMEOUT,
    RECEIVE_BUFFER,
    SEND_BUFFER,
    Link,
    Scope,
    Status,
    is_ip,
    local_port,
    warn,
)
from ._sockets import open_transport
from ._streampeer import StreamPeer, _refuse
from ._util import check_timeout, unwrap_body_error

__all__ = ["StreamPeerTCP"]

_Status = Status  # the enum, for annotations inside StreamPeerTCP (where Status is its alias)

log = logging.getLogger("trionet.godot")


class StreamPeerTCP(StreamPeer):
    """Godot's ``StreamPeerTCP``: a TCP client (or an accepted connection) you poll.

    ``connect_to_host`` returns ``Error.OK`` at once with the status
    ``STATUS_CONNECTING``; what the network did shows when :meth:`poll` is called.  The
    typed reads and writes of :class:`~trionet.StreamPeer` are awaited.

    Args:
        connect_timeout: Seconds a connection attempt may take before ``poll()`` reports
            ``ERR_CONNECTION_ERROR`` (Godot's default: 30).
        buffer_size: Received bytes held before the reader stops (see
            :data:`RECEIVE_BUFFER`).

    Resource handling:
        The peer is an async context manager owning a nursery: ``async with
        trionet.StreamPeerTCP() as peer:``.  Leaving the block disconnects and ends every
        task; nothing outlives it.  A peer returned by :meth:`TCPServer.take_connection
        <trionet.TCPServer.take_connection>` lives in the server's nursery instead; it
        needs no block of its own (``async with`` on it disconnects it at the end).

    Error handling:
        Nothing raises for a network condition or a bad argument; see each method's
        ``Error``.  Using a peer that is not connected returns ``Error.FAILED``, as Godot
        does; a reset connection ``ERR_CONNECTION_ERROR`` (status ``STATUS_ERROR``); the
        peer's orderly close ``ERR_FILE_EOF`` once its bytes are read (status
        ``STATUS_NONE``).
    """

    Status = Status
    STATUS_NONE = Status.STATUS_NONE
    STATUS_CONNECTING = Status.STATUS_CONNECTING
    STATUS_CONNECTED = Status.STATUS_CONNECTED
    STATUS_ERROR = Status.STATUS_ERROR

    def __init__(
        self,
        *,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        buffer_size: int = RECEIVE_BUFFER,
    ) -> None:
        super().__init__()
        if isinstance(buffer_size, bool) or not isinstance(buffer_size, int):
            raise TypeError(f"buffer_size must be an int, not {type(buffer_size).__name__}")
        if buffer_size <= 0:
            raise ValueError(f"buffer_size must be positive, got {buffer_size}")
        self._connect_timeout = check_timeout(connect_timeout, argument="connect_timeout")
        self._buffer_size = buffer_size  # the reader stops at this many buffered bytes
        self._scope: Scope | None = None  # the lifetime this peer's tasks run in
        self._block: AbstractAsyncContextManager[StreamPeerTCP] | None = None  # our own
        self._status = Status.STATUS_NONE  # what get_status() shows (changed by poll())
        self._link: Link | None = None  # the current connection, if any
        self._bound: socket.socket | None = None  # from bind(), used by the next connect
        self._no_delay = False  # TCP_NODELAY for the next connection

    # -- lifetime -----------------------------------------------------------------------

    async def __aenter__(self) -> StreamPeerTCP:
        if self._scope is not None:
            return self  # accepted by a TCPServer: already owned
        block = self._lifetime()
        self._block = block
        return await block.__aenter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool | None:
        block, self._block = self._block, None
        if block is None:
            self.disconnect_from_host()
            return None
        return await block.__aexit__(exc_type, exc, traceback)

    @asynccontextmanager
    async def _lifetime(self) -> AsyncIterator[StreamPeerTCP]:
        async with unwrap_body_error(), trio.open_nursery() as nursery:
            scope = Scope(nursery)
            self._scope = scope
            try:
                yield self
            finally:
                self.disconnect_from_host()
                scope.close()
                self._scope = None

    @classmethod
    def _adopt(cls, scope: Scope, stream: trio.abc.Stream, *, buffer_size: int) -> StreamPeerTCP:
        """A CONNECTED peer for an accepted ``stream``, living in ``scope``."""
        assert scope.nursery is not None
        peer = cls(buffer_size=buffer_size)
        ip, port = remote_address(stream)
        link = Link(ip, port)
        link.ip = ip
        link.local_port = local_port(stream)
        link.transport = open_transport(stream)
        link.connected = True
        peer._scope = scope
        peer._link = link
        peer._status = Status.STATUS_CONNECTED
        scope.start(peer._run, link, None)
        return peer

    # -- Godot's API ----------------------------------------------------------------------

    def bind(self, port: int, host: str = "*") -> Error:
        """Bind the next connection's local end to ``host:port``.

        ``"*"`` means every IPv4 interface; port 0 lets the system pick one.

        Returns:
            ``OK``; ``ERR_ALREADY_IN_USE`` if already bound or connected;
            ``ERR_INVALID_PARAMETER`` for a port outside 0..65535 or a host that is not an
            IP address; ``ERR_UNAVAILABLE`` if the system refused the bind;
            ``ERR_UNCONFIGURED`` outside the peer's ``async with`` block.
        """
        if isinstance(port, bool) or not isinstance(port, int):
            return _refuse(port, "port", "an int")
        if not isinstance(host, str):
            return _refuse(host, "host", "a str")
        if self._bound is not None or self._status != Status.STATUS_NONE:
            return warn(Error.ERR_ALREADY_IN_USE, "bind: the socket is already open")
        if not 0 <= port <= 65535:
            return warn(Error.ERR_INVALID_PARAMETER, f"bind: port must be 0..65535, got {port}")
        if self._scope is None:
            return warn(Error.ERR_UNCONFIGURED, "bind: the peer's async with block is not open")
        if host == "*":
            family, address = socket.AF_INET, "0.0.0.0"
        elif is_ip(host):
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            address = host
        else:
            return warn(Error.ERR_INVALID_PARAMETER, f"bind: {host!r} is not an IP address")
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.bind((address, port))
        except OSError as exc:
            sock.close()
            return warn(Error.ERR_UNAVAILABLE, f"bind to {host}:{port} failed: {exc.strerror}")
        self._bound = sock
        return Error.OK

    def connect_to_host(self, host: str, port: int) -> Error:
        """Start connecting to ``host:port``; the outcome shows at :meth:`poll`.

        A host name is resolved in the background: a name that does not resolve makes
        ``poll()`` return ``ERR_CANT_RESOLVE`` (Godot resolves before returning; trionet
        does not block the event loop for DNS).

        Returns:
            ``OK`` (status ``STATUS_CONNECTING``); ``ERR_ALREADY_IN_USE`` unless the status
            is ``STATUS_NONE``; ``ERR_INVALID_PARAMETER`` for an empty host or a port
            outside 1..65535; ``ERR_UNCONFIGURED`` outside the ``async with`` block.
        """
        if not isinstance(host, str):
            return _refuse(host, "host", "a str")
        if isinstance(port, bool) or not isinstance(port, int):
            return _refuse(port, "port", "an int")
        if self._status != Status.STATUS_NONE:
            return warn(Error.ERR_ALREADY_IN_USE, "connect_to_host: not disconnected")
        if not host:
            return warn(Error.ERR_INVALID_PARAMETER, "connect_to_host: empty host")
        if not 1 <= port <= 65535:
            return warn(
                Error.ERR_INVALID_PARAMETER, f"connect_to_host: port must be 1..65535, got {port}"
            )
        scope = self._scope
        link = Link(host, port)
        if scope is None or not scope.start(self._run, link, self._bound):
            return warn(Error.ERR_UNCONFIGURED, "connect_to_host: no async with block is open")
        self._bound = None  # the link task owns it now
        self._link = link
        self._status = Status.STATUS_CONNECTING
        return Error.OK

    def disconnect_from_host(self) -> None:
        """Close the connection (pending received bytes are dropped); status ``STATUS_NONE``."""
        self._end(Status.STATUS_NONE)
        if self._bound is not None:
            self._bound.close()
            self._bound = None

    def poll(self) -> Error:
        """Apply what the network did since the last call.

        Returns:
            ``OK``, or, when the connection failed (status now ``STATUS_ERROR``), why:
            ``ERR_CONNECTION_ERROR`` (refused, timed out, reset) or ``ERR_CANT_RESOLVE``.
            After the peer's orderly close, once every received byte was read, the status
            becomes ``STATUS_NONE``.
        """
        link = self._link
        if link is None or self._status not in (
            Status.STATUS_CONNECTING,
            Status.STATUS_CONNECTED,
        ):
            return Error.OK
        if link.failure is not None:
            self._end(Status.STATUS_ERROR)
            return link.failure
        if self._status == Status.STATUS_CONNECTING:
            if link.connected:
                self._status = Status.STATUS_CONNECTED
        elif link.eof and not link.buffer:
            self._end(Status.STATUS_NONE)
        return Error.OK

    def get_status(self) -> _Status:
        """The status as of the last :meth:`poll` (or data call)."""
        return self._status

    def get_connected_host(self) -> str:
        """The peer's IP address (``""`` when not connected)."""
        return self._link.ip if self._link is not None else ""

    def get_connected_port(self) -> int:
        """The peer's port (0 when not connected)."""
        return self._link.port if self._link is not None else 0

    def get_local_port(self) -> int:
        """Our end's port (0 when neither bound nor connected)."""
        if self._link is not None and self._link.local_port:
            return self._link.local_port
        if self._bound is not None:
            return int(self._bound.getsockname()[1])
        return 0

    def set_no_delay(self, enabled: bool) -> None:
        """Set ``TCP_NODELAY`` (Nagle's algorithm off) now and for later connections."""
        self._no_delay = bool(enabled)
        link = self._link
        if link is not None and link.transport is not None and not link.closed:
            with contextlib.suppress(OSError):  # the socket closed under us
                link.transport.set_no_delay(self._no_delay)

    async def wait(self) -> None:
        """Wait until :meth:`poll` has something to apply or bytes are available.

        A trionet addition for trio code that would rather not poll on a timer; it
        returns at once if that is already the case (or nothing is connecting).
        """
        await trio.lowlevel.checkpoint()
        while (link := self._link) is not None and not self._ready(link):
            await link.changed.park()

    def _ready(self, link: Link) -> bool:
        if link.failure is not None or link.eof or link.closed:
            return True
        if self._status == Status.STATUS_CONNECTING:
            return link.connected
        return bool(link.buffer)

    # -- StreamPeer primitives --------------------------------------------------------------

    def get_available_bytes(self) -> int:
        """Received bytes waiting to be read (they count as they arrive, without poll)."""
        return len(self._link.buffer) if self._link is not None else 0

    async def get_data(self, n_bytes: int) -> tuple[Error, bytes]:
        """Wait for exactly ``n_bytes`` bytes (a connect under way is waited for first).

        Returns:
            ``(OK, data)``; ``(FAILED, b"")`` when not connected; ``(ERR_FILE_EOF, partial)``
            when the peer closed first; ``(ERR_CONNECTION_ERROR, partial)`` when it broke;
            ``(ERR_INVALID_PARAMETER, b"")`` for a negative count.
        """
        if isinstance(n_bytes, bool) or not isinstance(n_bytes, int):
            return _refuse(n_bytes, "n_bytes", "an int"), b""
        if n_bytes < 0:
            return warn(Error.ERR_INVALID_PARAMETER, f"get_data: {n_bytes} bytes"), b""
        link, error = await self._usable()
        if link is None:
            return error, b""
        data = await link.collect(n_bytes)
        if len(data) == n_bytes:
            return Error.OK, data
        return self._ended(link), data

    def get_partial_data(self, n_bytes: int) -> tuple[Error, bytes]:
        """Return up to ``n_bytes`` of the bytes received so far, without waiting.

        Returns:
            ``(OK, data)`` (``data`` may be empty); ``(FAILED, b"")`` when not connected;
            ``(ERR_FILE_EOF, b"")`` / ``(ERR_CONNECTION_ERROR, b"")`` once the buffer is
            empty and the peer closed / the connection broke; ``(ERR_BUSY, b"")`` while an
            awaited ``get_data`` is collecting bytes.
        """
        if isinstance(n_bytes, bool) or not isinstance(n_bytes, int):
            return _refuse(n_bytes, "n_bytes", "an int"), b""
        if n_bytes < 0:
            return warn(Error.ERR_INVALID_PARAMETER, f"get_partial_data: {n_bytes}"), b""
        link = self._link_for_call()
        if link is None:
            return Error.FAILED, b""
        if link.reading:
            return Error.ERR_BUSY, b""
        buffer = link.buffer
        if buffer:
            data = bytes(buffer[:n_bytes])
            del buffer[:n_bytes]
            link.room.unpark_all()
            return Error.OK, data
        if self._status == Status.STATUS_CONNECTED and (link.failure or link.eof or link.closed):
            return self._ended(link), b""
        return Error.OK, b""

    async def put_data(self, data: bytes | bytearray | memoryview) -> Error:
        """Send all of ``data`` (a connect under way is waited for first).

        Returns:
            ``OK`` once the kernel took every byte; ``FAILED`` when not connected;
            ``ERR_CONNECTION_ERROR`` (status ``STATUS_ERROR``) when the connection broke.
        """
        if not isinstance(data, (bytes, bytearray, memoryview)):
            return _refuse(data, "data", "bytes")
        link, error = await self._usable()
        if link is None:
            return error
        if link.failure is not None or link.closed or not await link.send_all(data):
            return self._ended(link)
        return Error.OK

    def put_partial_data(self, data: bytes | bytearray | memoryview) -> tuple[Error, int]:
        """Queue as much of ``data`` as the send buffer takes now (see :data:`SEND_BUFFER`).

        Returns:
            ``(OK, sent)``; ``(FAILED, 0)`` when not connected; ``(ERR_CONNECTION_ERROR, 0)``
            when the connection broke.
        """
        if not isinstance(data, (bytes, bytearray, memoryview)):
            return _refuse(data, "data", "bytes"), 0
        link = self._link_for_call()
        if link is None:
            return Error.FAILED, 0
        if link.failure is not None or link.closed:
            return self._ended(link), 0
        take = min(len(data), max(0, SEND_BUFFER - len(link.outgoing)))
        if take:
            link.outgoing += data[:take]
            link.flush.unpark_all()
        return Error.OK, take

    def _desync(self, reason: str) -> None:
        link = self._link
        log.warning("%s; the stream is out of step, failing the peer", reason)
        if link is not None:
            record = ErrorRecord(
                err_code=ErrorCode.CONNECTION_BROKEN, message=reason, component_signature="godot"
            )
            link.fail(Error.ERR_INVALID_DATA, record)
        self._end(Status.STATUS_ERROR)

    # -- internals ------------------------------------------------------------------------

    def _link_for_call(self) -> Link | None:
        """The link a non-blocking call may use, applying a finished connect as Godot does."""
        link = self._link
        if link is None or self._status not in (
            Status.STATUS_CONNECTING,
            Status.STATUS_CONNECTED,
        ):
            return None
        if self._status == Status.STATUS_CONNECTING and link.connected:
            self._status = Status.STATUS_CONNECTED
        return link

    async def _usable(self) -> tuple[Link | None, Error]:
        """The connected link for an awaited call, or the error to return."""
        link = self._link_for_call()
        if link is None:
            await trio.lowlevel.checkpoint()
            return None, Error.FAILED
        while not link.connected and link.failure is None and not link.closed:
            await link.changed.park()
        if not link.connected:
            return None, self._ended(link)
        if self._link is link:
            self._status = Status.STATUS_CONNECTED
        return link, Error.OK

    def _ended(self, link: Link) -> Error:
        """Apply a broken or closed link now (as Godot's read/write do); its error."""
        if self._link is not link:
            return Error.FAILED  # disconnected meanwhile
        if link.failure is not None:
            self._end(Status.STATUS_ERROR)
            return link.failure
        if link.eof:
            self._end(Status.STATUS_NONE)
            return Error.ERR_FILE_EOF
        self._end(Status.STATUS_NONE)
        return Error.FAILED

    def _end(self, status: _Status) -> None:
        link, self._link = self._link, None
        if link is not None:
            link.scope.cancel()
            link.wake()
        self._status = status

    async def _run(self, link: Link, bound: socket.socket | None) -> None:
        """The link's task: connect, then read and write until cancelled.  Never raises."""
        await link.run(
            bound,
            self._scope,
            buffer_size=self._buffer_size,
            connect_timeout=self._connect_timeout,
            no_delay=self._no_delay,
        )
