"""A :class:`~trionet.WebSocketServer` and its clients over memory streams."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import attrs
import trio

from .._transport import StreamTransport, Transport
from .._wsclient import client_handshake, client_lifetime
from .._wsconnection import WebSocketConnection
from .._wsoptions import WebSocketOptions
from .._wsproto import FrameLayer
from .._wsserver import WebSocketServer
from ._harness import _MemoryTrioListener
from ._memory import DEFAULT_CAPACITY, MemoryTCPStream

__all__ = ["MemoryWebSocket", "MemoryWebSocketNetwork", "open_memory_websocket_server"]


@attrs.frozen
class MemoryWebSocket:
    """A client connection to a memory server, and both ends of the stream under it.

    Use the streams to inject faults: ``stream.reset()`` (an RST), ``stream.vanish()``
    (the network drops everything), ``server_stream.stall()`` (the server stops reading),
    and the rest of :class:`~trionet.testing.MemoryTCPStream`'s controls.
    """

    #: The client's :class:`~trionet.WebSocketConnection` (``status``, ``send``,
    #: ``terminate``, ``events()`` when no handler was given).
    ws: WebSocketConnection
    #: The client's end of the memory stream.
    stream: MemoryTCPStream
    #: The server's end.
    server_stream: MemoryTCPStream


@attrs.define
class MemoryWebSocketNetwork:
    """A :class:`~trionet.WebSocketServer` on memory streams, and ways to connect to it."""

    #: The server, exactly as :meth:`trionet.WebSocketServer.new` builds it.
    server: WebSocketServer
    _trio_listener: _MemoryTrioListener
    _capacity: int

    async def connect_stream(self, *, seed: int | None = None) -> MemoryTCPStream:
        """Connect a raw stream, to drive the server byte by byte from the test.

        Raises:
            ConnectionRefusedError: the server no longer accepts.
        """
        client, _server = await self._trio_listener.dial(self._capacity, seed)
        return client

    def connect(
        self,
        handler: object | None = None,
        *,
        path: str = "/",
        subprotocols: Sequence[str] = (),
        headers: Sequence[tuple[str, str]] = (),
        seed: int | None = None,
        **limits: Any,
    ) -> AbstractAsyncContextManager[MemoryWebSocket]:
        """Open a client :class:`~trionet.WebSocketConnection` to the server.

        The client runs the same code as any trionet WebSocket connection (the client side
        of the handshake, masking, the lifecycle, the closing handshake); ``handler`` and
        ``limits`` are as for the server's connections.  Entering the block does not wait
        for the upgrade: the first event (``open`` or ``error``) says how it went.
        """
        options = WebSocketOptions.make(**limits)

        @asynccontextmanager
        async def lifetime() -> AsyncIterator[MemoryWebSocket]:
            client, server = await self._trio_listener.dial(self._capacity, seed)

            async def opener() -> tuple[Transport, FrameLayer, str | None, bytes]:
                return await client_handshake(
                    StreamTransport(client),
                    host=f"127.0.0.1:{self._trio_listener.port}",
                    target=path,
                    options=options,
                    subprotocols=subprotocols,
                    headers=headers,
                )

            url = f"ws://127.0.0.1:{self._trio_listener.port}{path}"
            async with client_lifetime(opener, handler=handler, options=options, url=url) as ws:
                yield MemoryWebSocket(ws=ws, stream=client, server_stream=server)

        return lifetime()


@asynccontextmanager
async def open_memory_websocket_server(
    handler: object,
    *,
    port: int = 9001,
    capacity: int = DEFAULT_CAPACITY,
    path: str | None = None,
    data_type: str = "text",
    http_handler: Any = None,
    subprotocols: Any = (),
    **limits: Any,
) -> AsyncIterator[MemoryWebSocketNetwork]:
    """Run a :class:`~trionet.WebSocketServer` with ``handler`` on memory streams.

    Arguments are as for :meth:`trionet.WebSocketServer.new` (no host, TLS or socket
    options: there are no sockets).  Connect with :meth:`MemoryWebSocketNetwork.connect`
    (a client connection) or :meth:`MemoryWebSocketNetwork.connect_stream` (raw bytes).
    Timeouts are trio's clock: with ``autojump_clock`` a 10 s close timeout takes no time.
    """
    trio_listener = _MemoryTrioListener(port)

    async def opener() -> list[trio.abc.Listener[trio.abc.Stream]]:
        return [trio_listener]

    server = WebSocketServer(
        handler=handler,
        opener=opener,
        options=WebSocketOptions.make(data_type=data_type, **limits),
        path=path,
        http_handler=http_handler,
        ssl_context=None,
        subprotocols=subprotocols if callable(subprotocols) else tuple(subprotocols),
        no_delay=False,
    )
    async with server._lifetime():
        yield MemoryWebSocketNetwork(server, trio_listener, capacity)
