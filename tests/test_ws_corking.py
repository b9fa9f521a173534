"""Corked answers: one write per received chunk, and never a held-back send.

Over real loopback sockets (corking applies to socket transports).  A raw client writes
many frames at once; the server's answers must all come back, in order, with far fewer
writes than messages, and an answer must never wait for a callback that blocks after
sending it.
"""

from __future__ import annotations

from typing import Any

import pytest
import trio
from websockets.sync.client import connect

import trionet
import trionet._sockets as transport_module
from trionet.testing import EventRecorder

TIMEOUT = 10


def client_frame(text: str) -> bytes:
    """A masked text frame (mask of zeros: the payload stays readable in the test)."""
    data = text.encode()
    assert len(data) < 126
    return bytes((0x81, 0x80 | len(data))) + b"\0\0\0\0" + data


async def raw_client(port: int) -> trio.SocketStream:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    await stream.send_all(
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += await stream.receive_some(4096)
    assert head.startswith(b"HTTP/1.1 101")
    return stream


async def read_texts(stream: trio.SocketStream, count: int) -> list[str]:
    buffer = b""
    texts: list[str] = []
    while len(texts) < count:
        buffer += await stream.receive_some(65536)
        while len(buffer) >= 2 and len(buffer) >= 2 + (buffer[1] & 0x7F):
            size = buffer[1] & 0x7F
            assert buffer[0] == 0x81
            assert size < 126
            texts.append(buffer[2 : 2 + size].decode())
            buffer = buffer[2 + size :]
    return texts


class Echo:
    async def on_message(self, ws: trionet.WebSocketConnection, event: Any) -> None:
        await ws.send(event.data)


class EchoServer:
    def on_connection(self, wss: trionet.WebSocketServer, event: Any) -> Echo:
        return Echo()


async def serve_echo(ws: trionet.WebSocketConnection) -> None:
    async for event in ws.events():
        if event.type == "message":
            await ws.send(event.data)


@pytest.fixture
def write_counter(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the socket writes of every SocketTransport (a list of their sizes)."""
    writes: list[int] = []
    original = transport_module.SocketTransport._send_all

    async def counting(self: Any, data: Any, head: bytes = b"") -> None:
        writes.append(len(head) + len(data))
        await original(self, data, head)

    monkeypatch.setattr(transport_module.SocketTransport, "_send_all", counting)
    return writes


@pytest.mark.parametrize("handler", [EchoServer(), serve_echo], ids=["handler", "events"])
async def test_pipelined_messages_are_answered_in_order_with_few_writes(
    handler: object, write_counter: list[int]
) -> None:
    with trio.fail_after(TIMEOUT):
        async with trionet.WebSocketServer.new(handler, compression=False) as wss:
            stream = await raw_client(wss.port)
            write_counter.clear()
            texts = [f"m{i:03d}" for i in range(200)]
            await stream.send_all(b"".join(client_frame(t) for t in texts))
            assert await read_texts(stream, 200) == texts
            await stream.aclose()
    assert len(write_counter) < 50, write_counter  # 200 answers, far fewer writes


async def test_an_answer_is_not_held_back_by_a_callback_that_waits() -> None:
    release = trio.Event()

    class AckThenWait:
        async def on_message(self, ws: trionet.WebSocketConnection, event: Any) -> None:
            await ws.send("ack " + event.data)
            await release.wait()  # a database call, say

    class Server:
        def on_connection(self, wss: trionet.WebSocketServer, event: Any) -> AckThenWait:
            return AckThenWait()

    with trio.fail_after(TIMEOUT):
        async with trionet.WebSocketServer.new(Server(), compression=False) as wss:
            stream = await raw_client(wss.port)
            await stream.send_all(client_frame("one"))
            assert await read_texts(stream, 1) == ["ack one"]  # while the callback waits
            release.set()
            await stream.aclose()


async def test_an_events_consumer_that_waits_after_sending_is_not_held_back() -> None:
    release = trio.Event()

    async def serve(ws: trionet.WebSocketConnection) -> None:
        async for event in ws.events():
            if event.type == "message":
                await ws.send("ack " + event.data)
                await release.wait()

    with trio.fail_after(TIMEOUT):
        async with trionet.WebSocketServer.new(serve, compression=False) as wss:
            stream = await raw_client(wss.port)
            await stream.send_all(client_frame("one"))
            assert await read_texts(stream, 1) == ["ack one"]
            release.set()
            await stream.aclose()


async def test_a_burst_of_broadcasts_reaches_clients_that_read() -> None:
    recorders: list[EventRecorder] = []
    all_ready = trio.Event()

    class Ready(EventRecorder):
        async def on_message(self, ws: trionet.WebSocketConnection, event: Any) -> None:
            self.add(event)
            if sum(1 for r in recorders if "ready" in r.messages) == 3:
                all_ready.set()

    class Server:
        def on_connection(self, wss: trionet.WebSocketServer, event: Any) -> EventRecorder:
            recorder = Ready()
            recorders.append(recorder)
            return recorder

    def client(port: int) -> list[str]:
        got: list[str] = []
        with connect(f"ws://127.0.0.1:{port}/", open_timeout=5) as ws:
            ws.send("ready")
            while len(got) < 300:
                got.append(str(ws.recv(timeout=5)))
        return got

    with trio.fail_after(TIMEOUT):
        async with trionet.WebSocketServer.new(Server(), broadcast_backlog=16) as wss:
            async with trio.open_nursery() as nursery:
                results: list[list[str]] = []

                async def run_client() -> None:
                    results.append(await trio.to_thread.run_sync(client, wss.port))

                for _ in range(3):
                    nursery.start_soon(run_client)
                await all_ready.wait()
                for i in range(300):  # no await in between: far past the backlog of 16
                    assert wss.broadcast(f"b{i}") == 3
    expected = [f"b{i}" for i in range(300)]
    assert results == [expected] * 3
    assert all(r.types[-1] == "terminate" and r.events[-1].code == 1000 for r in recorders)
