"""4D's ``WebSocketServer`` on trio: handshakes, plain HTTP, and connections in one nursery."""

from __future__ import annotations

import logging
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

import trio

from . import _endpoints, _wsbackground
from ._accepting import AcceptingServer, ListenerOpener
from ._handlers import (
    WEBSOCKET_SERVER_CALLBACKS,
    HandlerFailure,
)
from ._util import check_bool, check_port
from ._wsaccept import open_connection
from ._wsconnection import WebSocketConnection
from ._wsevents import CloseCode, WebSocketEvent, WebSocketEventType, WebSocketRequest
from ._wsoptions import WebSocketOptions
from ._wsstate import WSInput
from ._wsvalues import Termination, payload_of

__all__ = ["WebSocketServer"]

log = logging.getLogger("trionet.websocket")

Serve = Callable[[WebSocketConnection], Awaitable[object]]
HTTPHandler = Callable[[WebSocketRequest], Any]
SubprotocolChoice = Sequence[str] | Callable[[WebSocketRequest], "str | None"]

_T = WebSocketEventType


class WebSocketServer(AcceptingServer):
    """A WebSocket server with 4D's event-driven API (4D ``WebSocketServer``).

    Create one with :meth:`new`.  ``handler`` is either

    * an object (or mapping) with ``on_connection(wss, event)`` (mandatory: it sees
      ``event.request`` and returns a connection handler with ``on_message`` and optional
      ``on_open``, ``on_terminate``, ``on_error``, or ``None`` to refuse with HTTP 403),
      and optional ``on_open`` (listening), ``on_terminate`` (closed) and ``on_error``; or
    * an ``async def serve(ws)`` run in its own task for every connection (all are
      accepted), typically ``async for event in ws.events(): ...``; the connection closes
      (1000) when it returns.

    Resource handling:
        Every connection lives in the server's nursery.  :meth:`terminate` or leaving the
        ``async with`` block closes the listening sockets, answers handshakes in flight
        with 503, sends 1001 to every connection and waits (each at most
        ``close_timeout``) for the closing handshakes.

    Error handling:
        A bad request gets its HTTP status (400, 404, 413, 414, 426, 431) and an
        ``on_error`` event; a callback that raises ends only its own connection (1011).
    """

    _event_class = WebSocketEvent
    _types = WebSocketEventType

    def __init__(
        self,
        *,
        handler: object,
        opener: ListenerOpener,
        options: WebSocketOptions,
        path: str | None,
        http_handler: HTTPHandler | None,
        ssl_context: ssl.SSLContext | None,
        subprotocols: SubprotocolChoice,
        no_delay: bool,
    ) -> None:
        """Use :meth:`new`."""
        super().__init__(
            opener=opener, handler=handler, names=WEBSOCKET_SERVER_CALLBACKS, connection="ws"
        )
        self._options = options  # limits and timeouts of every connection
        self._path = path  # the only path served, or None for all
        self._http_handler = http_handler  # answers plain HTTP requests, if given
        self._ssl_context = ssl_context  # TLS (wss://) when set
        self._subprotocols = subprotocols  # how a subprotocol is chosen
        self._no_delay = no_delay  # TCP_NODELAY on accepted connections
        self._handshakes: set[trio.CancelScope] = set()  # handshakes in flight
        self._keepalive_scope = trio.CancelScope()  # cancelled when terminating

    @classmethod
    def new(
        cls,
        handler: object,
        *,
        host: str | None = "127.0.0.1",
        port: int = 0,
        path: str | None = None,
        data_type: str = "text",
        http_handler: HTTPHandler | None = None,
        ssl_context: ssl.SSLContext | None = None,
        subprotocols: SubprotocolChoice = (),
        reuse_port: bool = False,
        backlog: int | None = None,
        no_delay: bool = True,
        **limits: Any,
    ) -> AbstractAsyncContextManager[WebSocketServer]:
        """Serve WebSockets on ``host:port`` for the duration of an ``async with`` block.

        Args:
            handler: A server handler object or an ``async def serve(ws)`` (see the class).
            host: Address or name to bind (``None``: every interface).
            port: TCP port, 0..65535; 0 picks a free one (read it from :attr:`port`).
            path: The only path accepted (others get 404); ``None`` accepts every path.
            data_type: ``"text"``, ``"blob"`` or ``"object"`` (see :attr:`data_type`).
            http_handler: ``http_handler(request)`` (sync or async) answers requests that
                are not upgrades, returning ``(status, headers, body)``; without it they
                get 426.
            ssl_context: Serve ``wss://``: each connection is wrapped in TLS first.
            subprotocols: The subprotocols supported, in order of preference (the first
                one the client offered wins), or a function ``(request) -> str | None``
                that picks one of ``request.subprotocols``.
            reuse_port: ``SO_REUSEPORT``: several processes may serve the same port.
            backlog: Listen queue length (``None``: the system maximum).
            no_delay: ``TCP_NODELAY`` (on by default: a WebSocket message is a unit).
            **limits: ``max_message_size``, ``max_queue``, ``read_ahead``,
                ``open_timeout``, ``close_timeout``, ``ping_interval``, ``ping_timeout``
                (``None`` disables keepalive), ``send_timeout``, ``broadcast_backlog``,
                ``compression`` (permessage-deflate), ``limits`` (a
                :class:`~trionet.HandshakeLimits`); see :doc:`/explanation/websocket-limits`.

        Returns:
            An async context manager yielding the listening server.

        Raises:
            TypeError: an argument has the wrong type (the message names it).
            ValueError: an argument is out of range (the message names it).
            ListenError: on entering the block, if the port cannot be bound.
        """
        check_port(port)
        if host is not None and not isinstance(host, str):
            raise TypeError(f"host must be a str or None, not {type(host).__name__}")
        if path is not None and (not isinstance(path, str) or not path.startswith("/")):
            raise (TypeError if not isinstance(path, str) else ValueError)(
                f"path must be None or a str starting with '/', got {path!r}"
            )
        if http_handler is not None and not callable(http_handler):
            raise TypeError("http_handler must be callable")
        if ssl_context is not None and not isinstance(ssl_context, ssl.SSLContext):
            raise TypeError(
                f"ssl_context must be an ssl.SSLContext, not {type(ssl_context).__name__}"
            )
        if not callable(subprotocols) and (
            isinstance(subprotocols, str) or not all(isinstance(p, str) for p in subprotocols)
        ):
            raise TypeError("subprotocols must be a sequence of str or a function")
        check_bool(reuse_port, argument="reuse_port")
        options = WebSocketOptions.make(data_type=data_type, **limits)

        async def opener() -> Sequence[trio.abc.Listener[trio.abc.Stream]]:
            return await _endpoints.open_listeners(
                host, port, backlog=backlog, reuse_port=reuse_port
            )

        server = cls(
            handler=handler,
            opener=opener,
            options=options,
            path=path,
            http_handler=http_handler,
            ssl_context=ssl_context,
            subprotocols=subprotocols if callable(subprotocols) else tuple(subprotocols),
            no_delay=check_bool(no_delay, argument="no_delay"),
        )
        return server._lifetime()

    # -- public API ---------------------------------------------------------------------

    @property
    def connections(self) -> list[WebSocketConnection]:
        """The open connections (those not closed yet), a copy."""
        return [c for c in self._connections if c.status != "Closed"]

    @property
    def data_type(self) -> str:
        """How received messages are presented: ``"text"``, ``"blob"`` or ``"object"``.

        ``"text"`` gives ``str`` for text and ``bytes`` for binary messages, ``"blob"``
        ``bytes`` for every message, ``"object"`` text parsed as JSON.
        """
        return self._options.data_type

    @property
    def path(self) -> str | None:
        """The path served, or ``None`` for every path."""
        return self._path

    @property
    def options(self) -> WebSocketOptions:
        """The limits and timeouts every connection gets."""
        return self._options

    @property
    def memory_budget(self) -> dict[str, int]:
        """The most buffer memory one connection can hold, by part, in bytes.

        See :meth:`WebSocketOptions.memory_budget` for the parts.
        """
        return dict(self._options.memory_budget())

    def terminate(self) -> Termination:
        """Stop listening, answer handshakes in flight with 503, close every connection (1001).

        Idempotent; callable from any task and from other threads.  Await the result to
        wait until every connection has closed (each within ``close_timeout``).
        """
        self._request_terminate()
        return Termination(self.wait)

    def broadcast(self, message: Any, *, exclude: Iterable[WebSocketConnection] = ()) -> int:
        """Send ``message`` to every open connection but ``exclude``; never waits.

        Each connection has its own backlog, sent by a task of its own, so a slow client
        delays nobody else; one that falls ``broadcast_backlog`` messages behind is closed
        with 1008.

        Returns:
            How many connections the message was queued for.

        Raises:
            TypeError: ``message`` is not ``str``, bytes, ``dict`` or ``list``.
        """
        payload = payload_of(message)
        skip = set(exclude)
        count = 0
        for conn in self._connections:
            if conn not in skip and conn.status == "Connected":
                _wsbackground.enqueue(conn, payload, self._options.broadcast_backlog)
                count += 1
        return count

    def __repr__(self) -> str:
        state = "terminated" if self._terminated else "listening"
        return f"<WebSocketServer port={self._port} {state} connections={len(self._connections)}>"

    # -- internals ----------------------------------------------------------------------

    def _end_connections(self) -> None:
        self._keepalive_scope.cancel()
        for scope in self._handshakes:
            scope.cancel()
        super()._end_connections()

    def _end_connection(self, conn: WebSocketConnection) -> None:
        conn._request_close((int(CloseCode.GOING_AWAY), ""))

    async def _started(self, connections: trio.Nursery) -> None:
        options = self._options
        if options.keepalive:
            connections.start_soon(self._keepalive)
        await self._notify_logged(_T.OPEN)

    async def _keepalive(self) -> None:
        options = self._options
        with self._keepalive_scope:
            await _wsbackground.run_keepalive(
                lambda: self._connections, options.ping_interval, options.ping_timeout
            )

    def _takes_sockets(self) -> bool:
        return self._ssl_context is None

    async def _handle(self, stream: trio.abc.Stream, nursery: trio.Nursery) -> None:
        await self._run_connection(stream, _endpoints.remote_address(stream), nursery)

    async def _handle_socket(
        self, sock: socket.socket, remote: tuple[str, int], nursery: trio.Nursery
    ) -> None:
        await self._run_connection(sock, remote, nursery)

    async def _run_connection(
        self,
        source: trio.abc.Stream | socket.socket,
        remote: tuple[str, int],
        nursery: trio.Nursery,
    ) -> None:
        """Run one accepted connection, handshake included, to its end; never raises."""
        accepted, transport = await open_connection(self, source, remote)
        if accepted is None or transport is None:
            return
        conn = WebSocketConnection(
            handler=accepted.handler,
            callbacks=accepted.callbacks,
            options=self._options,
            spawn=nursery.start_soon,
            server=self,
            request=accepted.request,
            transport=transport,
            frames=accepted.frames,
            subprotocol=accepted.subprotocol,
            trailing=accepted.trailing,
        )
        await self._own(conn)

    async def _run_serve(self, conn: WebSocketConnection, serve: Serve) -> None:
        """Serve style: the connection closes (1000) when the serve function returns.

        Once the connection has closed, the serve function gets ``close_timeout`` to
        notice (its ``events()`` ends) and return; then it is cancelled, so that a serve
        function that never returns cannot hold the server open.
        """
        serving = trio.CancelScope()

        def closed() -> None:
            serving.deadline = trio.current_time() + self._options.close_timeout

        conn._on_closed = closed
        async with trio.open_nursery() as nursery:
            await nursery.start(conn._run)
            try:
                with serving:
                    await serve(conn)
            except Exception as exc:
                failure = HandlerFailure(getattr(serve, "__name__", "serve"), exc)
                failure.__cause__ = exc
                record = conn._handler_failed(failure)
                conn._fail_from_outside(WSInput.FAIL, int(CloseCode.INTERNAL_ERROR), record)
            finally:
                if conn._events is not None:
                    conn._events.close()
                conn._request_close()
