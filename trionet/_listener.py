"""4D's ``TCPListener`` on trio: accept loops and every accepted connection in one nursery."""

from __future__ import annotations

import logging
import socket
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager

import trio

from . import _endpoints
from ._accepting import ERRORS_KEPT, AcceptingServer, ListenerOpener
from ._connection import DEFAULT_CLOSE_TIMEOUT, DEFAULT_CONNECTION_TIMEOUT, TCPConnection
from ._events import ErrorCode, ErrorRecord, TCPEventType
from ._handlers import CONNECTION_CALLBACKS, LISTENER_CALLBACKS, HandlerFailure, resolve_callbacks
from ._sockets import adopt, open_transport
from ._transport import Transport, TransportError
from ._util import check_bool, check_port, check_timeout

__all__ = ["ERRORS_KEPT", "TCPListener"]

log = logging.getLogger("trionet.tcp")

Serve = Callable[[TCPConnection], Awaitable[object]]


class TCPListener(AcceptingServer):
    """A TCP server with 4D's event-driven API (4D ``TCPListener``).

    Create one with :meth:`new`.  Every accepted connection lives in the listener's
    nursery: :meth:`terminate` (or leaving the ``async with`` block) closes the listening
    sockets, frees the port, and ends each connection with its ``terminate`` event.

    ``handler`` is either

    * an object (or mapping) with ``on_connection(listener, event)`` that returns ``None``
      to refuse the connection or a handler object for the new :class:`TCPConnection`, and
      optional ``on_error(listener, event)`` and ``on_terminate(listener, event)`` (4D's
      camelCase names work too); or
    * an ``async def serve(conn)`` run in its own task for each connection, typically
      ``async for event in conn.events(): ...``; the connection ends when it returns.

    Error handling:
        A callback or ``serve`` that raises ends only its own connection, with an ``error``
        event; the listener keeps serving.  Accept failures are recorded in :attr:`errors`
        and passed to ``on_error``.  A port that cannot be bound raises
        :class:`~trionet.ListenError` when the block is entered.
    """

    def __init__(
        self,
        *,
        handler: object,
        opener: ListenerOpener,
        no_delay: bool,
        connection_timeout: float,
        close_timeout: float,
    ) -> None:
        """Use :meth:`new`."""
        super().__init__(
            opener=opener, handler=handler, names=LISTENER_CALLBACKS, connection="conn"
        )
        self._no_delay = no_delay  # TCP_NODELAY for accepted connections
        self._connection_timeout = connection_timeout  # passed on to accepted connections
        self._close_timeout = close_timeout  # each connection's orderly-close budget

    @classmethod
    def new(
        cls,
        port: int,
        handler: object,
        *,
        host: str | None = None,
        backlog: int | None = None,
        reuse_port: bool = False,
        no_delay: bool = False,
        connection_timeout: float = DEFAULT_CONNECTION_TIMEOUT,
        close_timeout: float = DEFAULT_CLOSE_TIMEOUT,
    ) -> AbstractAsyncContextManager[TCPListener]:
        """Listen on ``port`` for the duration of an ``async with`` block.

        Args:
            port: TCP port, 0..65535; 0 picks a free port (read it from :attr:`port`).
            handler: A listener handler object or an ``async def serve(conn)`` (see the
                class description).
            host: Address or name to bind; ``None`` binds every local interface, as 4D does.
            backlog: Listen queue length; ``None`` uses the system maximum.
            reuse_port: Set ``SO_REUSEPORT``, so several processes can listen on the same
                port and the kernel spreads incoming connections over them.
            no_delay: ``TCP_NODELAY`` for accepted connections.
            connection_timeout: Kept for accepted connections' options (they are already
                connected, so it does not apply to them).
            close_timeout: Seconds each connection gets for an orderly end.

        Returns:
            An async context manager yielding the listening :class:`TCPListener`.

        Raises:
            TypeError: an argument has the wrong type (the message names it).
            ValueError: ``port`` is outside 0..65535, or a timeout or ``backlog`` is not
                positive.
            ListenError: on entering the block, if the port cannot be bound.
        """
        check_port(port)
        if host is not None and not isinstance(host, str):
            raise TypeError(f"host must be a str or None, not {type(host).__name__}")
        if backlog is not None:
            if isinstance(backlog, bool) or not isinstance(backlog, int):
                raise TypeError(f"backlog must be an int or None, not {type(backlog).__name__}")
            if backlog <= 0:
                raise ValueError(f"backlog must be positive, got {backlog}")

        check_bool(reuse_port, argument="reuse_port")

        async def opener() -> Sequence[trio.abc.Listener[trio.abc.Stream]]:
            return await _endpoints.open_listeners(
                host, port, backlog=backlog, reuse_port=reuse_port
            )

        listener = cls(
            handler=handler,
            opener=opener,
            no_delay=check_bool(no_delay, argument="no_delay"),
            connection_timeout=check_timeout(connection_timeout, argument="connection_timeout"),
            close_timeout=check_timeout(close_timeout, argument="close_timeout"),
        )
        return listener._lifetime()

    @property
    def connections(self) -> list[TCPConnection]:
        """The accepted connections that have not terminated yet (a copy)."""
        return list(self._connections)

    def terminate(self) -> None:
        """Close the listening sockets, free the port, and end every connection.

        Idempotent; safe from any task, and from other threads (it then runs in the
        listener's trio thread).  Connections end in order, each within its close timeout;
        the ``async with`` block waits for them when it exits.
        """
        self._request_terminate()

    def __repr__(self) -> str:
        state = "terminated" if self._terminated else "listening"
        return f"<TCPListener port={self._port} {state} connections={len(self._connections)}>"

    # -- internals ----------------------------------------------------------------------

    async def _handle(self, stream: trio.abc.Stream, nursery: trio.Nursery) -> None:
        await self._run_connection(open_transport(stream), _endpoints.remote_address(stream))

    async def _handle_socket(
        self, sock: socket.socket, remote: tuple[str, int], nursery: trio.Nursery
    ) -> None:
        try:
            transport = adopt(sock, no_delay=self._no_delay)
        except TransportError as exc:
            log.debug("%s: connection from %s:%s lost: %s", self, *remote, exc)
            return
        await self._run_connection(transport, remote)

    async def _run_connection(self, transport: Transport, remote: tuple[str, int]) -> None:
        ip, port = remote
        try:
            handler = await self._choose_handler(ip, port)
        except BaseException:
            await transport.aclose()
            raise
        if handler is _REFUSED:
            await transport.aclose()
            return
        conn = TCPConnection(
            address=ip,
            port=port,
            handler=handler,
            listener=self,
            transport=transport,
            no_delay=self._no_delay,
            connection_timeout=self._connection_timeout,
            close_timeout=self._close_timeout,
        )
        await self._own(conn)

    async def _choose_handler(self, ip: str, port: int) -> object:
        """Ask ``on_connection`` for the connection's handler (handler style)."""
        if self._serve is not None:
            return None
        try:
            result = await self._notify(TCPEventType.CONNECTION, ip=ip, port=port)
            if result is not None:
                resolve_callbacks(result, CONNECTION_CALLBACKS, argument="on_connection's result")
        except (HandlerFailure, TypeError) as failure:
            cause = failure.__cause__ if isinstance(failure, HandlerFailure) else failure
            record = ErrorRecord(
                err_code=ErrorCode.HANDLER_RAISED,
                message=f"connection from {ip}:{port} refused: {failure}",
                component_signature="handler",
            )
            log.error("%s: %s", self, record.message, exc_info=cause)
            await self._report(record)
            return _REFUSED
        return _REFUSED if result is None else result

    async def _run_serve(self, conn: TCPConnection, serve: Serve) -> None:
        """Serve style: the connection's lifetime is the serve function's call."""
        async with conn._lifetime():
            try:
                await serve(conn)
            except Exception as exc:
                failure = HandlerFailure(getattr(serve, "__name__", "serve"), exc)
                failure.__cause__ = exc
                conn._fail_from_outside((conn._handler_failed(failure),))


_REFUSED = object()
