"""What every trionet server shares: listening sockets, accept loops, one nursery.

:class:`AcceptingServer` is the base of :class:`~trionet.TCPListener` and
:class:`~trionet.WebSocketServer`; the Godot ``TCPServer`` shares its accept-error policy.
"""

from __future__ import annotations

import errno
import inspect
import logging
import socket
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import trio

from ._events import ErrorCode, ErrorRecord, TCPEvent, TCPEventType
from ._handlers import HandlerFailure, call_user, resolve_callbacks
from ._sockets import accept_sockets, listening_socket
from ._util import call_soon_in, current_token, unwrap_body_error

__all__ = ["ERRORS_KEPT", "RESOURCE_ERRNOS", "RESOURCE_PAUSE", "AcceptingServer", "ListenerOpener"]

log = logging.getLogger("trionet.tcp")

#: A trio listener factory: how a server gets its listening sockets.
ListenerOpener = Callable[[], Awaitable[Sequence[trio.abc.Listener[trio.abc.Stream]]]]

# How many records ``errors`` keeps (the newest).
#
# A public server sees failures for as long as it runs (refused handlers, resets during
# accept, descriptor exhaustion); keeping them all would be a slow leak.  A hundred is
# plenty to diagnose the last burst of trouble.
ERRORS_KEPT = 100

# Accept errors that mean "out of resources right now", not "this listener is broken".
#
# The same list as trio's serve_listeners: on these we log, wait a little for descriptors
# or memory to come back, and keep accepting, instead of ending the listener.
RESOURCE_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS})
RESOURCE_PAUSE = 0.100


class AcceptingServer:
    """What every trionet server shares: listening sockets, accept loops, one nursery.

    Subclasses (:class:`TCPListener`, :class:`~trionet.WebSocketServer`) say what to do
    with each accepted stream (:meth:`_handle`) and how their events look; this class
    owns the lifetime: the sockets are bound when the ``async with`` block is entered,
    every accepted connection runs in the server's nursery, and :meth:`terminate` (or the
    end of the block) closes the sockets, frees the port and ends every connection.

    Accepting survives running out of descriptors or memory (``EMFILE`` and friends are
    logged, reported to ``on_error`` and retried after a short pause); any other accept
    failure ends that listening socket.
    """

    #: The event class and event-type enum of this kind of server.
    _event_class: Callable[..., Any] = TCPEvent
    _types: Any = TCPEventType

    def __init__(
        self,
        *,
        opener: ListenerOpener,
        handler: object,
        names: Mapping[Any, tuple[str, str]],
        connection: str,
    ) -> None:
        """Take ``handler``: an ``async def serve(...)``, or an object with ``names``' callbacks.

        Raises:
            TypeError: ``handler`` is neither, or has no ``on_connection`` (the message says
                ``serve(connection)`` with the given name).
        """
        self._opener = opener  # opens the listening sockets when the block is entered
        self._handler = handler  # the user's handler object or serve function
        self._serve: Callable[[Any], Awaitable[object]] | None = None  # set in serve style
        #: The server handler's callbacks, by event type (empty in serve style).
        self._callbacks: dict[Any, tuple[str, Callable[[Any, Any], Any]]] = {}
        if inspect.iscoroutinefunction(handler):
            self._serve = handler
        else:
            self._callbacks = resolve_callbacks(handler, names, argument="handler")
            if self._types.CONNECTION not in self._callbacks:
                raise TypeError(
                    f"handler must be an async serve({connection}) function or have an "
                    "on_connection (or onConnection) callback"
                )
        self._port = 0  # bound port, known once listening
        self._errors: deque[ErrorRecord] = deque(maxlen=ERRORS_KEPT)
        self._connections: set[Any] = set()  # live connections
        self._accept_scope = trio.CancelScope()  # cancelled by terminate()
        self._terminated = False  # terminate() was called
        self._finished = trio.Event()  # everything ended and on_terminate ran
        self._token = current_token()  # lets terminate() hop in from other threads

    @asynccontextmanager
    async def _lifetime(self) -> AsyncIterator[Any]:
        self._token = trio.lowlevel.current_trio_token()
        listeners = list(await self._opener())
        self._port = _bound_port(listeners)
        async with unwrap_body_error(), trio.open_nursery() as nursery:
            nursery.start_soon(self._supervise, listeners)
            try:
                yield self
            finally:
                self._request_terminate()

    # -- public API ---------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound port (the one picked by the system when ``port=0`` was given)."""
        return self._port

    @property
    def errors(self) -> list[ErrorRecord]:
        """The newest failures of this server (at most 100), oldest first (a copy)."""
        return list(self._errors)

    @property
    def terminated(self) -> bool:
        """Whether :meth:`terminate` was called (or the block was left)."""
        return self._terminated

    @property
    def handler(self) -> object:
        """The handler object or serve function given to :meth:`new`."""
        return self._handler

    def _request_terminate(self) -> None:
        """What ``terminate()`` does, from any task or thread."""
        call_soon_in(self._token, self._terminate_now)

    async def wait(self) -> None:
        """Wait until the server and all its connections have ended."""
        await self._finished.wait()

    # -- internals ----------------------------------------------------------------------

    def _terminate_now(self) -> None:
        if self._terminated:
            return
        self._terminated = True
        self._accept_scope.cancel()
        self._end_connections()

    def _end_connections(self) -> None:
        for conn in list(self._connections):
            self._end_connection(conn)

    def _end_connection(self, conn: Any) -> None:
        """Ask one connection to end because the server is terminating."""
        conn.terminate()

    async def _own(self, conn: Any) -> None:
        """Run an accepted connection to its end as one of :attr:`connections`."""
        self._connections.add(conn)
        try:
            if self._terminated:
                self._end_connection(conn)
            if self._serve is None:
                await conn._run()
            else:
                await self._run_serve(conn, self._serve)
        finally:
            self._connections.discard(conn)

    async def _run_serve(self, conn: Any, serve: Callable[[Any], Awaitable[object]]) -> None:
        """Serve style: run ``serve(conn)`` for the connection's lifetime."""
        raise NotImplementedError

    def _record(self, record: ErrorRecord) -> None:
        self._errors.append(record)

    async def _notify(self, event_type: Any, **fields: Any) -> Any:
        """Call the server callback for ``event_type`` (handler style only)."""
        entry = self._callbacks.get(event_type)
        if entry is None:
            return None
        event = self._event_class(type=event_type, **fields)
        return await call_user(entry[0], entry[1], self, event)

    async def _notify_logged(self, event_type: Any, **fields: Any) -> None:
        """:meth:`_notify`, for callbacks whose failure can only be logged."""
        try:
            await self._notify(event_type, **fields)
        except HandlerFailure as failure:
            log.error("%s: %s", self, failure, exc_info=failure.__cause__)

    async def _report(self, record: ErrorRecord) -> None:
        """Record a server failure and tell ``on_error``; its own failure is logged."""
        self._record(record)
        await self._notify_logged(self._types.ERROR, errors=(record,))

    async def _started(self, connections: trio.Nursery) -> None:
        """Called once the accept loops are about to run (WebSocket: ``on_open``)."""

    async def _supervise(self, listeners: list[trio.abc.Listener[trio.abc.Stream]]) -> None:
        """Own the accept loops and the connections; deliver the server's terminate."""
        try:
            async with trio.open_nursery() as connections:
                with self._accept_scope:
                    await self._started(connections)
                    async with trio.open_nursery() as accepting:
                        for listener in listeners:
                            accepting.start_soon(self._accept_loop, listener, connections)
                # Accepting is over (terminate() or every accept loop failed).
                self._terminate_now()
        finally:
            with trio.CancelScope(shield=True):
                for listener in listeners:
                    await trio.aclose_forcefully(listener)
                await self._notify_logged(self._types.TERMINATE)
                self._finished.set()

    def _takes_sockets(self) -> bool:
        """Whether accepted TCP sockets may skip trio's streams (no TLS to wrap them in)."""
        return True

    async def _accept_loop(
        self, listener: trio.abc.Listener[trio.abc.Stream], connections: trio.Nursery
    ) -> None:
        # A trio SocketListener's socket is accepted on directly (see _sockets): no trio
        # stream and socket wrapper per connection, several connections per wake-up.
        sock = listening_socket(listener) if self._takes_sockets() else None

        def accepted(connection: socket.socket, remote: tuple[str, int]) -> None:
            connections.start_soon(self._handle_socket, connection, remote, connections)

        try:
            while True:
                try:
                    if sock is not None:
                        await accept_sockets(sock, accepted)
                        return
                    stream = await listener.accept()
                except OSError as exc:
                    record = ErrorRecord(
                        err_code=exc.errno or ErrorCode.ACCEPT_FAILED,
                        message=f"accept failed on port {self._port}: {exc.strerror or exc}",
                        component_signature="os",
                    )
                    log.warning("%s: %s", self, record.message)
                    await self._report(record)
                    if exc.errno in RESOURCE_ERRNOS:
                        await trio.sleep(RESOURCE_PAUSE)
                        continue
                    return
                except (trio.ClosedResourceError, trio.BrokenResourceError):
                    return
                connections.start_soon(self._handle, stream, connections)
        finally:
            with trio.CancelScope(shield=True):
                await trio.aclose_forcefully(listener)

    async def _handle(self, stream: trio.abc.Stream, nursery: trio.Nursery) -> None:
        """Run one connection accepted as a trio stream to its end; never raises."""
        raise NotImplementedError

    async def _handle_socket(
        self, sock: socket.socket, remote: tuple[str, int], nursery: trio.Nursery
    ) -> None:
        """Run one connection accepted as a plain socket to its end; never raises."""
        raise NotImplementedError


def _bound_port(listeners: Sequence[trio.abc.Listener[Any]]) -> int:
    for listener in listeners:
        if isinstance(listener, trio.SocketListener):
            return int(listener.socket.getsockname()[1])
        port = getattr(listener, "port", None)
        if isinstance(port, int):
            return port
    return 0
