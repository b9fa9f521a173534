"""A consumer that stops reading: pings are still answered for the read-ahead, then TCP waits.

The peer here is a raw client built from trionet's sans-I/O pieces (the client side of the
handshake and a client FrameLayer) over a memory stream, so the test controls every frame.
"""

from __future__ import annotations

from typing import Any

import trio
import trio.testing

import trionet
from trionet._wshandshake import ClientHandshake, HandshakeLimits
from trionet._wsoptions import WebSocketOptions
from trionet._wsproto import PONG, FrameLayer
from trionet.testing import open_memory_websocket_server


class RawClient:
    """Frames in and out by hand over a memory stream."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.frames: FrameLayer | None = None
        self.items: list[tuple[Any, ...]] = []

    async def open(self) -> None:
        handshake = ClientHandshake(
            "127.0.0.1", "/", subprotocols=(), extensions=[], headers=(), limits=HandshakeLimits()
        )
        await self.stream.send_all(handshake.request_bytes)
        while True:
            done = handshake.feed(await self.stream.receive_some(65536))
            if done is not None:
                connection, _protocol, rest = done
                self.frames = FrameLayer(connection, data_type="text", max_message_size=1 << 20)
                if rest:
                    self.items += self.frames.feed(rest)
                return

    async def send(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def wait_for(self, kind: int) -> tuple[Any, ...]:
        assert self.frames is not None
        while True:
            for item in self.items:
                if item[0] == kind:
                    self.items.remove(item)
                    return item
            self.items += self.frames.feed(await self.stream.receive_some(65536))


async def test_pings_are_answered_while_the_queue_is_full(autojump_clock: Any) -> None:
    entered = trio.Event()

    async def serve(ws: trionet.WebSocketConnection) -> None:
        entered.set()
        await trio.sleep_forever()  # never reads ws.events()

    async with open_memory_websocket_server(serve, max_queue=4, ping_interval=None) as net:
        client = RawClient(await net.connect_stream())
        with trio.fail_after(5):
            await client.open()
            await entered.wait()
            assert client.frames is not None
            for i in range(6):  # a full queue (4), and two more read ahead
                await client.send(client.frames.message(f"m{i}"))
            await client.send(client.frames.ping(b"still there?"))
            pong = await client.wait_for(PONG)
        assert pong[1] == b"still there?"
        # The pong goes out as soon as the ping is parsed, maybe before the messages of
        # the same chunk were queued: let the server finish that chunk.
        await trio.testing.wait_all_tasks_blocked()
        conn = net.server.connections[0]
        # open, then the six messages: nothing was lost while reading ahead.
        assert conn.events().statistics()["current_buffer_used"] == 7


async def test_read_ahead_is_bounded_then_tcp_waits(autojump_clock: Any) -> None:
    options = WebSocketOptions.make(max_queue=2, read_ahead=4096, compression=False)

    async def serve(ws: trionet.WebSocketConnection) -> None:
        await trio.sleep_forever()

    async with open_memory_websocket_server(
        serve,
        max_queue=options.max_queue,
        read_ahead=options.read_ahead,
        compression=False,
        ping_interval=None,
    ) as net:
        client = RawClient(await net.connect_stream())
        with trio.fail_after(5):
            await client.open()
        assert client.frames is not None
        frame = client.frames.message("y" * 1000)
        sent = 0
        with trio.move_on_after(2):  # sending stops once every buffer is full
            while True:
                await client.send(frame)
                sent += 1
        await trio.testing.wait_all_tasks_blocked()
        queued = net.server.connections[0].events().statistics()["current_buffer_used"]
        # The queue's 2, at most 2 more read ahead; the rest waits in the stream's buffer.
        assert 2 <= queued <= 4
        assert sent < 200  # the memory stream holds 64 KiB: TCP-like backpressure reached us


async def test_a_slow_consumer_still_gets_every_message_in_order(autojump_clock: Any) -> None:
    got: list[str] = []
    all_in = trio.Event()

    async def serve(ws: trionet.WebSocketConnection) -> None:
        async for event in ws.events():
            if event.type == "message":
                await trio.sleep(0.01)  # slow
                got.append(event.data)
                if len(got) == 100:
                    all_in.set()

    async with open_memory_websocket_server(serve, max_queue=2) as net:
        async with net.connect() as c:
            events = c.ws.events()
            assert (await events.receive()).type == "open"
            for i in range(100):
                await c.ws.send(str(i))
            with trio.fail_after(30):
                await all_in.wait()
    assert got == [str(i) for i in range(100)]
