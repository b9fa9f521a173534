"""What happens to a client that stops reading: ``broadcast_backlog`` and ``send_timeout``.

Two policies, both ending with close code 1008 (policy violation):

* ``broadcast()`` never waits.  Each client has a backlog of messages; when a client is
  ``broadcast_backlog`` messages behind, it is closed and the others carry on.
* ``await ws.send()`` waits while the peer does not read, but at most ``send_timeout``
  seconds; then the connection ends and ``send`` raises ``ConnectionClosedError``.

Run ``python ws_slow_clients.py``: a reading client and a stalled one (a raw socket that
completes the handshake and then never reads) join a server that broadcasts; then a
second server sends to a stalled client directly.
"""

from __future__ import annotations

import base64
import os

import trio
from websockets.sync.client import connect

import trionet

CHUNK = os.urandom(256 * 1024)  # random, so the bytes really travel


async def stalled_client(port: int, path: str = "/") -> trio.SocketStream:
    """Open a WebSocket by hand, then never read from it again."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    await stream.send_all(
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    response = b""
    while b"\r\n\r\n" not in response:
        response += await stream.receive_some(4096)
    assert response.startswith(b"HTTP/1.1 101"), response
    return stream


class Recorder:
    """Connection handler that prints how each connection ended, and acknowledges."""

    def __init__(self, name: str, server: Server) -> None:
        self.name = name
        self.server = server

    def on_open(self, ws: trionet.WebSocketConnection, event: trionet.WebSocketEvent) -> None:
        self.server.opened += 1
        if self.server.opened == 2:
            self.server.both_open.set()

    def on_message(self, ws: trionet.WebSocketConnection, event: trionet.WebSocketEvent) -> None:
        self.server.acks.send_nowait(None)  # the reading client got one broadcast

    def on_error(self, ws: trionet.WebSocketConnection, event: trionet.WebSocketEvent) -> None:
        print(f"  {self.name}: error: {event.errors[0].message}")

    def on_terminate(self, ws: trionet.WebSocketConnection, event: trionet.WebSocketEvent) -> None:
        print(f"  {self.name}: closed with {event.code}")


class Server:
    def __init__(self) -> None:
        self.acks, self.ack_received = trio.open_memory_channel[None](1000)
        self.opened = 0
        self.both_open = trio.Event()

    def on_connection(
        self, wss: trionet.WebSocketServer, event: trionet.WebSocketEvent
    ) -> Recorder:
        assert event.request is not None
        return Recorder(event.request.query.get("name", "?"), self)


def reader(port: int, count: int) -> int:
    """A healthy client: read ``count`` broadcasts, acknowledging each."""
    with connect(f"ws://127.0.0.1:{port}/?name=reader", max_size=None) as websocket:
        for _ in range(count):
            websocket.recv(timeout=10)
            websocket.send("ack")
    return count


async def broadcast_to_a_stalled_client() -> None:
    print("broadcast_backlog=8:")
    server = Server()
    async with trionet.WebSocketServer.new(server, port=0, broadcast_backlog=8) as wss:
        stalled = await stalled_client(wss.port, "/?name=stalled")
        rounds = 400  # 100 MiB for the stalled client: far more than the kernel buffers
        async with trio.open_nursery() as nursery:
            nursery.start_soon(trio.to_thread.run_sync, reader, wss.port, rounds)
            await server.both_open.wait()
            for _ in range(rounds):
                wss.broadcast(CHUNK)
                await server.ack_received.receive()  # pace the server by the healthy client
        print(f"  the reading client received all {rounds} broadcasts")
        await stalled.aclose()


async def send_to_a_stalled_client() -> None:
    print("send_timeout=1:")

    done = trio.Event()

    async def serve(ws: trionet.WebSocketConnection) -> None:
        sent = 0
        try:
            while True:
                await ws.send(CHUNK[:16384])
                sent += 1
        except trionet.ConnectionClosedError as exc:
            print(f"  send raised ConnectionClosedError after {sent} messages: {exc}")
        done.set()

    async with trionet.WebSocketServer.new(serve, port=0, send_timeout=1, close_timeout=1) as wss:
        stalled = await stalled_client(wss.port)
        await done.wait()
        await stalled.aclose()


async def main() -> None:
    with trio.fail_after(30):
        await broadcast_to_a_stalled_client()
        await send_to_a_stalled_client()


if __name__ == "__main__":
    trio.run(main)
