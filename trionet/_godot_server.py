"""Godot's ``TCPServer`` on trio: a listening socket you poll for new peers."""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections import deque
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from types import TracebackType

import trio

from ._accepting import RESOURCE_ERRNOS, RESOURCE_PAUSE
from ._godot_errors import Error
from ._godot_link import RECEIVE_BUFFER, Scope, warn
from ._godot_tcp import StreamPeerTCP
from ._streampeer import _refuse
from ._util import unwrap_body_error

__all__ = ["MAX_PENDING", "TCPServer"]

log = logging.getLogger("trionet.godot")

# Accepted connections held until take_connection(), and the listen backlog.
#
# Godot leaves pending connections in the kernel's backlog (its MAX_PENDING_CONNECTIONS is
# 8).  trionet accepts in a background task so that is_connection_available() is a plain
# check; it holds at most this many accepted peers, then stops accepting and the kernel's
# backlog (the same size) holds the next ones, and past that new clients wait in SYN retries.
# A game server that takes connections every frame never comes close to 128.
MAX_PENDING = 128


class TCPServer:
    """Godot's ``TCPServer``: listen on a port, then take connected peers as they come.

    ``listen`` is a plain call, as in Godot: it creates, binds and listens on the socket
    synchronously (binding never waits on the network), then hands the socket to trio; a
    background task accepts connections, and :meth:`take_connection` returns them.

    Args:
        buffer_size: ``buffer_size`` for the peers it returns (see
            :class:`~trionet.StreamPeerTCP`).

    Resource handling:
        The server is an async context manager owning a nursery: ``async with
        trionet.TCPServer() as server:``.  Every peer :meth:`take_connection` returns lives
        in that nursery: leaving the block stops listening and disconnects every taken
        peer, so none outlives the block.  :meth:`stop` only closes the listening socket
        (taken peers carry on, as in Godot).

    Error handling:
        :meth:`listen` returns Godot's error codes; nothing raises for a network condition.
    """

    def __init__(self, *, buffer_size: int = RECEIVE_BUFFER) -> None:
        if isinstance(buffer_size, bool) or not isinstance(buffer_size, int):
            raise TypeError(f"buffer_size must be an int, not {type(buffer_size).__name__}")
        if buffer_size <= 0:
            raise ValueError(f"buffer_size must be positive, got {buffer_size}")
        self._buffer_size = buffer_size  # for the peers it returns
        self._scope: Scope | None = None  # the block's nursery and the taken peers' links
        self._block: AbstractAsyncContextManager[TCPServer] | None = None
        self._socket: trio.socket.SocketType | None = None  # the listening socket
        self._port = 0  # its port
        self._accepting = trio.CancelScope()  # the accept task's scope, cancelled by stop()
        self._pending: deque[trio.SocketStream] = deque()  # accepted, not taken yet
        self._room = trio.lowlevel.ParkingLot()  # the accept task waits for room
        self._arrived = trio.lowlevel.ParkingLot()  # wait_connection() waits here

    # -- lifetime -----------------------------------------------------------------------

    async def __aenter__(self) -> TCPServer:
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
        assert block is not None, "__aexit__ without __aenter__"
        return await block.__aexit__(exc_type, exc, traceback)

    @asynccontextmanager
    async def _lifetime(self) -> AsyncIterator[TCPServer]:
        async with unwrap_body_error(), trio.open_nursery() as nursery:
            scope = Scope(nursery)
            self._scope = scope
            try:
                yield self
            finally:
                self.stop()
                scope.close()
                self._scope = None

    # -- Godot's API ----------------------------------------------------------------------

    def listen(self, port: int, bind_address: str = "*") -> Error:
        """Listen on ``port`` (0: the system picks one; read it with :meth:`get_local_port`).

        Args:
            port: 0..65535.
            bind_address: An IP address, or ``"*"`` for every interface (IPv6 and IPv4
                where the system has a dual-stack socket, else IPv4).

        Returns:
            ``OK``; ``ERR_ALREADY_IN_USE`` when already listening or the port is taken
            (Godot reports both so); ``ERR_INVALID_PARAMETER`` for a bad port or address;
            ``ERR_CANT_CREATE`` if no socket could be made; ``FAILED`` if ``listen()``
            failed; ``ERR_UNCONFIGURED`` outside the ``async with`` block.
        """
        if isinstance(port, bool) or not isinstance(port, int):
            return _refuse(port, "port", "an int")
        if not isinstance(bind_address, str):
            return _refuse(bind_address, "bind_address", "a str")
        if self._socket is not None:
            return warn(Error.ERR_ALREADY_IN_USE, "listen: already listening")
        if not 0 <= port <= 65535:
            return warn(Error.ERR_INVALID_PARAMETER, f"listen: port must be 0..65535, got {port}")
        scope = self._scope
        if scope is None or scope.nursery is None:
            return warn(Error.ERR_UNCONFIGURED, "listen: the server's async with block is not open")
        dual_stack = False
        if bind_address == "*":
            dual_stack = socket.has_dualstack_ipv6()
            family = socket.AF_INET6 if dual_stack else socket.AF_INET
            address = "::" if dual_stack else "0.0.0.0"
        else:
            try:
                parsed = ipaddress.ip_address(bind_address)
            except ValueError:
                return warn(Error.ERR_INVALID_PARAMETER, f"listen: bad address {bind_address!r}")
            family = socket.AF_INET6 if parsed.version == 6 else socket.AF_INET
            address = bind_address
        try:
            sock = socket.socket(family, socket.SOCK_STREAM)
        except OSError as exc:
            return warn(Error.ERR_CANT_CREATE, f"listen: no socket: {exc.strerror}")
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if dual_stack:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            try:
                sock.bind((address, port))
            except OSError as exc:
                sock.close()
                return warn(Error.ERR_ALREADY_IN_USE, f"listen: cannot bind: {exc.strerror}")
            try:
                sock.listen(MAX_PENDING)
            except OSError as exc:
                sock.close()
                return warn(Error.FAILED, f"listen: {exc.strerror}")
            self._port = int(sock.getsockname()[1])
            trio_socket = trio.socket.from_stdlib_socket(sock)
        except BaseException:
            sock.close()
            raise
        self._socket = trio_socket
        self._accepting = trio.CancelScope()
        scope.nursery.start_soon(self._accept_loop, trio.SocketListener(trio_socket))
        log.debug("TCPServer listening on %s:%d", address, self._port)
        return Error.OK

    def is_listening(self) -> bool:
        """Whether :meth:`listen` succeeded and :meth:`stop` was not called since."""
        return self._socket is not None

    def get_local_port(self) -> int:
        """The listening port (0 when not listening)."""
        return self._port if self._socket is not None else 0

    def is_connection_available(self) -> bool:
        """Whether :meth:`take_connection` would return a peer now."""
        return bool(self._pending)

    def take_connection(self) -> StreamPeerTCP | None:
        """The next accepted peer, already ``STATUS_CONNECTED``, or ``None``.

        The peer lives in this server's nursery (see the class description).
        """
        scope = self._scope
        if not self._pending or scope is None or scope.nursery is None:
            return None
        stream = self._pending.popleft()
        self._room.unpark_all()
        return StreamPeerTCP._adopt(scope, stream, buffer_size=self._buffer_size)

    def stop(self) -> None:
        """Stop listening: close the socket and drop connections not taken yet."""
        self._accepting.cancel()
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        while self._pending:
            self._pending.popleft().socket.close()
        self._port = 0
        self._arrived.unpark_all()

    async def wait_connection(self) -> None:
        """Wait until a connection is available or the server stops listening.

        A trionet addition for trio code that would rather not poll on a timer.
        """
        await trio.lowlevel.checkpoint()
        while not self._pending and self._socket is not None:
            await self._arrived.park()

    # -- internals ------------------------------------------------------------------------

    async def _accept_loop(self, listener: trio.SocketListener) -> None:
        """Accept into the pending queue until stopped.  Never raises."""
        with self._accepting:
            while True:
                while len(self._pending) >= MAX_PENDING:
                    await self._room.park()
                try:
                    stream = await listener.accept()
                except (OSError, trio.ClosedResourceError) as exc:
                    if self._socket is None or isinstance(exc, trio.ClosedResourceError):
                        return
                    # Out of descriptors or memory, or a connection reset while queued:
                    # either way, pause briefly (no busy loop) and accept again.
                    level = logging.WARNING if exc.errno in RESOURCE_ERRNOS else logging.INFO
                    log.log(level, "TCPServer: accept failed (%s), retrying", exc.strerror)
                    await trio.sleep(RESOURCE_PAUSE)
                    continue
                # trio turns Nagle off on every accepted socket; Godot leaves it on.
                stream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, False)
                self._pending.append(stream)
                self._arrived.unpark_all()
