"""Servers for the client tests: the websockets library's (asyncio in a thread, and trio)
and raw trio listeners that speak the upgrade by hand.

Server handlers are written once for both websockets flavours: they only await methods the
two connection classes share (``send``, ``recv``, ``async for``), plus :func:`close_with`
and :func:`ping_and_wait`, which paper over the one difference each.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import struct
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from functools import partial
from typing import Any

import trio
from websockets.asyncio.server import serve as asyncio_serve

try:
    from websockets.trio.server import serve as trio_serve
except ImportError:  # pragma: no cover - websockets older than its trio server
    trio_serve = None

HOST = "127.0.0.1"
TIMEOUT = 10  # every test's outer bound (seconds)
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

Handler = Callable[[Any], Awaitable[None]]
ServerFactory = Callable[..., AbstractAsyncContextManager[int]]


async def close_with(ws: Any, code: int, reason: str) -> None:
    """Close a websockets connection (``close`` in asyncio, ``aclose`` in trio)."""
    close = getattr(ws, "aclose", None) or ws.close
    await close(code, reason)


async def ping_and_wait(ws: Any, payload: bytes) -> None:
    """Ping and wait for the pong (asyncio returns a future, trio an Event)."""
    waiter = await ws.ping(payload)
    await (waiter.wait() if hasattr(waiter, "wait") else waiter)


async def drop(ws: Any) -> None:
    """Close the TCP connection under a websockets connection, without a close frame."""
    transport = getattr(ws, "transport", None)
    if transport is not None:  # asyncio
        transport.abort()
    else:  # trio
        await trio.aclose_forcefully(ws.stream)


async def eventually(condition: Callable[[], object]) -> None:
    """Wait until ``condition()`` holds: a server thread has recorded what it saw."""
    # A trio.Event cannot be set from the asyncio server's thread, hence the polling.
    while not condition():  # noqa: ASYNC110
        await trio.sleep(0.01)


@asynccontextmanager
async def asyncio_server(handler: Handler, **options: Any) -> AsyncIterator[int]:
    """``websockets.asyncio.server.serve`` in a thread with its own event loop; yields the port."""
    started = threading.Event()
    box: dict[str, Any] = {}

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stop = loop.create_future()
        box["loop"], box["stop"] = loop, stop
        options.setdefault("close_timeout", 2)
        async with asyncio_serve(handler, HOST, 0, **options) as server:
            box["port"] = next(iter(server.sockets)).getsockname()[1]
            started.set()
            await stop

    def run() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:  # pragma: no cover - reported to the test
            box["exc"] = exc
            started.set()

    thread = threading.Thread(target=run, name="websockets-asyncio-server", daemon=True)
    thread.start()
    await trio.to_thread.run_sync(started.wait, TIMEOUT)
    if "exc" in box:  # pragma: no cover
        raise box["exc"]
    try:
        yield box["port"]
    finally:
        box["loop"].call_soon_threadsafe(box["stop"].set_result, None)
        await trio.to_thread.run_sync(thread.join, TIMEOUT)


@asynccontextmanager
async def trio_server(handler: Handler, **options: Any) -> AsyncIterator[int]:
    """``websockets.trio.server.serve`` in this trio run; yields the port."""
    assert trio_serve is not None
    options.setdefault("close_timeout", 2)
    async with trio.open_nursery() as nursery:
        server = await nursery.start(partial(trio_serve, handler, 0, host=HOST, **options))
        yield server.listeners[0].socket.getsockname()[1]
        nursery.cancel_scope.cancel()


@asynccontextmanager
async def raw_server(
    serve_stream: Callable[[trio.SocketStream], Awaitable[None]],
) -> AsyncIterator[int]:
    """A plain trio TCP listener running ``serve_stream`` per connection; yields the port."""
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, serve_stream, 0, host=HOST))
        yield listeners[0].socket.getsockname()[1]
        nursery.cancel_scope.cancel()


async def accept_upgrade(stream: trio.abc.Stream, extra: bytes = b"") -> bytes:
    """Read an upgrade request and answer 101 by hand; returns the bytes after the head."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = await stream.receive_some(65536)
        assert chunk, f"the client closed during the upgrade: {data!r}"
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    headers = {}
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    key = headers[b"sec-websocket-key"]
    accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
    await stream.send_all(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept + b"\r\n" + extra + b"\r\n"
    )
    return rest


class FrameReader:
    """Reads client frames off a raw stream: ``(fin, opcode, mask_key or None, payload)``."""

    def __init__(self, stream: trio.abc.Stream, rest: bytes = b"") -> None:
        self.stream = stream
        self.buffer = bytearray(rest)

    async def _take(self, size: int) -> bytes:
        while len(self.buffer) < size:
            chunk = await self.stream.receive_some(65536)
            assert chunk, "the client closed mid-frame"
            self.buffer += chunk
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data

    async def read(self) -> tuple[bool, int, bytes | None, bytes]:
        first, second = await self._take(2)
        length = second & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", await self._take(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", await self._take(8))
        key = await self._take(4) if second & 0x80 else None
        payload = await self._take(length)
        if key is not None:
            payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
        return bool(first & 0x80), first & 0x0F, key, payload


def server_frame(opcode: int, payload: bytes, *, fin: bool = True) -> bytes:
    """An unmasked server frame (payloads under 126 bytes)."""
    assert len(payload) < 126
    return bytes([(0x80 if fin else 0) | opcode, len(payload)]) + payload
