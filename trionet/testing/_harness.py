"""Connections and listeners over memory streams, and an event recorder."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import attrs
import trio

from .._connection import DEFAULT_CLOSE_TIMEOUT, TCPConnection
from .._events import TCPEventType
from .._listener import TCPListener
from .._sockets import open_transport
from .._util import check_timeout
from ._memory import DEFAULT_CAPACITY, MemoryTCPStream, memory_stream_pair

__all__ = [
    "ConnectionPair",
    "EventRecorder",
    "MemoryNetwork",
    "open_connection_pair",
    "open_memory_listener",
]


def _connection(
    stream: MemoryTCPStream, handler: object | None, close_timeout: float
) -> TCPConnection:
    ip, port = stream.remote_address
    return TCPConnection(
        address=ip,
        port=port,
        handler=handler,
        no_delay=False,
        connection_timeout=close_timeout,
        close_timeout=close_timeout,
        transport=open_transport(stream),
    )


@attrs.frozen
class ConnectionPair:
    """Two connected :class:`~trionet.TCPConnection` objects and their memory streams."""

    #: The first connection (think "client").
    a: TCPConnection
    #: The second connection (think "server").
    b: TCPConnection
    #: The stream under ``a`` (use it to inject faults on that side).
    a_stream: MemoryTCPStream
    #: The stream under ``b``.
    b_stream: MemoryTCPStream


@asynccontextmanager
async def open_connection_pair(
    handler_a: object | None = None,
    handler_b: object | None = None,
    *,
    capacity: int = DEFAULT_CAPACITY,
    seed: int | None = None,
    close_timeout: float = DEFAULT_CLOSE_TIMEOUT,
) -> AsyncIterator[ConnectionPair]:
    """Two ``TCPConnection`` objects talking over memory streams, for handler tests.

    Both run exactly the code a socket connection runs (lifecycle, dispatcher, close
    protocol); only the byte stream differs.  Each side's ``handler`` is as for
    :meth:`trionet.TCPConnection.new` (``None`` for the ``events()`` style).

    Resource handling:
        Both connections end, each with its ``terminate`` event, when the block exits.
    """
    timeout = check_timeout(close_timeout, argument="close_timeout")
    a_stream, b_stream = memory_stream_pair(capacity=capacity, seed=seed)
    a = _connection(a_stream, handler_a, timeout)
    b = _connection(b_stream, handler_b, timeout)
    async with a._lifetime(), b._lifetime():
        yield ConnectionPair(a=a, b=b, a_stream=a_stream, b_stream=b_stream)


class _MemoryTrioListener(trio.abc.Listener[trio.abc.Stream]):
    """A trio ``Listener`` whose ``accept`` returns streams made by :meth:`dial`."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._send, self._receive = trio.open_memory_channel[MemoryTCPStream](0)
        self._clients = itertools.count(50000)

    async def dial(
        self, capacity: int, seed: int | None
    ) -> tuple[MemoryTCPStream, MemoryTCPStream]:
        """Connect: both ends, the client's first (the server's is being accepted)."""
        client_address = ("127.0.0.1", next(self._clients))
        server_address = ("127.0.0.1", self.port)
        client, server = memory_stream_pair(
            capacity=capacity, seed=seed, addresses=(client_address, server_address)
        )
        try:
            await self._send.send(server)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            raise ConnectionRefusedError(f"memory listener on port {self.port} is closed") from None
        return client, server

    async def accept(self) -> trio.abc.Stream:
        try:
            return await self._receive.receive()
        except trio.EndOfChannel:
            raise trio.ClosedResourceError("memory listener closed") from None

    async def aclose(self) -> None:
        self._receive.close()
        await trio.lowlevel.checkpoint()


@attrs.define
class MemoryNetwork:
    """A :class:`~trionet.TCPListener` on memory streams, and a way to connect to it."""

    #: The listener, exactly as :meth:`trionet.TCPListener.new` builds it.
    listener: TCPListener
    _trio_listener: _MemoryTrioListener
    _capacity: int
    _close_timeout: float

    async def connect_stream(self, *, seed: int | None = None) -> MemoryTCPStream:
        """Connect a raw stream (a plain peer, driven by the test itself).

        Raises:
            ConnectionRefusedError: the listener no longer accepts.
        """
        client, _server = await self._trio_listener.dial(self._capacity, seed)
        return client

    def connect(
        self, handler: object | None = None, *, seed: int | None = None
    ) -> AbstractAsyncContextManager[TCPConnection]:
        """Connect a :class:`~trionet.TCPConnection` to the listener for an ``async with``."""

        @asynccontextmanager
        async def lifetime() -> AsyncIterator[TCPConnection]:
            stream = await self.connect_stream(seed=seed)
            async with _connection(stream, handler, self._close_timeout)._lifetime() as conn:
                yield conn

        return lifetime()


@asynccontextmanager
async def open_memory_listener(
    handler: object,
    *,
    port: int = 9000,
    capacity: int = DEFAULT_CAPACITY,
    close_timeout: float = DEFAULT_CLOSE_TIMEOUT,
) -> AsyncIterator[MemoryNetwork]:
    """Run a :class:`~trionet.TCPListener` with ``handler`` on memory streams.

    ``handler`` is as for :meth:`trionet.TCPListener.new`.  Connect to it with
    :meth:`MemoryNetwork.connect` (a ``TCPConnection``) or
    :meth:`MemoryNetwork.connect_stream` (a raw stream).
    """
    trio_listener = _MemoryTrioListener(port)

    async def opener() -> list[trio.abc.Listener[trio.abc.Stream]]:
        return [trio_listener]

    timeout = check_timeout(close_timeout, argument="close_timeout")
    listener = TCPListener(
        handler=handler,
        opener=opener,
        no_delay=False,
        connection_timeout=timeout,
        close_timeout=timeout,
    )
    async with listener._lifetime():
        yield MemoryNetwork(listener, trio_listener, capacity, timeout)


class EventRecorder:
    """A connection handler that records every event it is given, in order.

    It works for TCP connections and WebSocket connections alike (``on_open`` and
    ``on_message`` are recorded too; ``echo`` then sends each message back).

    Use it as the ``handler`` of a connection (or return it from a listener's
    ``on_connection``) and assert on what happened::

        recorder = EventRecorder()
        ...
        assert recorder.types == ["connection", "data", "close", "terminate"]
        assert recorder.received == b"hello"

    Args:
        echo: Send every received chunk back (handy for a server side).
    """

    def __init__(self, *, echo: bool = False) -> None:
        self.echo = echo
        #: Every event, in delivery order.
        self.events: list[Any] = []  # TCPEvent or WebSocketEvent
        self._changed = trio.lowlevel.ParkingLot()

    @property
    def types(self) -> list[str]:
        """The recorded events' types as plain strings."""
        return [event.type.value for event in self.events]

    @property
    def received(self) -> bytes:
        """All bytes of the recorded ``data`` events, concatenated."""
        return b"".join(event.data or b"" for event in self.events)

    def add(self, event: Any) -> None:
        """Record an event obtained some other way (from ``events()``, say)."""
        self.events.append(event)
        self._changed.unpark_all()

    @property
    def messages(self) -> list[Any]:
        """The data of the recorded WebSocket ``message`` events, in order."""
        return [event.data for event in self.events if event.type == "message"]

    async def _record(self, conn: Any, event: Any) -> None:
        """Record ``event`` (and echo data when ``echo`` is set); every callback is this."""
        self.add(event)
        echoed = (event.type is TCPEventType.DATA and event.data) or event.type == "message"
        if self.echo and echoed:
            await conn.send(event.data)

    # TCP connections' callbacks, and WebSocket connections' (on_error, on_terminate too).
    on_connection = on_data = on_shutdown = on_error = on_terminate = _record
    on_open = on_message = _record

    async def wait_for(self, event_type: str, *, count: int = 1) -> Any:
        """Wait until ``count`` events of ``event_type`` were recorded; return the last."""
        while True:
            found = [event for event in self.events if event.type == event_type]
            if len(found) >= count:
                return found[count - 1]
            await self._changed.park()

    async def wait_for_bytes(self, size: int) -> bytes:
        """Wait until at least ``size`` bytes were received; return them all."""
        while len(self.received) < size:
            await self._changed.park()
        return self.received
