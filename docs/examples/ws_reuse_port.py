"""Several servers on one port with ``reuse_port=True`` (``SO_REUSEPORT``).

With ``reuse_port=True`` every server that sets it may bind the same port, and the
kernel spreads new connections over them.  Its real use is one server per process, to
use several CPU cores; to stay self-contained this program runs two servers in one
process, which shows the same thing.  ``TCPListener.new`` takes the same option.

Run ``python ws_reuse_port.py`` (Linux, macOS and the BSDs have ``SO_REUSEPORT``; on
other systems it says so and exits): it connects 40 clients and prints how many each
server answered.
"""

from __future__ import annotations

import socket
from collections import Counter
from collections.abc import Awaitable, Callable

import trio
from websockets.sync.client import connect

import trionet


def answering(name: str) -> Callable[[trionet.WebSocketConnection], Awaitable[None]]:
    async def serve(ws: trionet.WebSocketConnection) -> None:
        await ws.send(name)  # tell the client which server it reached

    return serve


async def greet(conn: trionet.TCPConnection) -> None:
    await conn.send(b"hello")


def clients(port: int, count: int) -> Counter[str]:
    answered: Counter[str] = Counter()
    for _ in range(count):
        with connect(f"ws://127.0.0.1:{port}/") as websocket:
            answered[str(websocket.recv(timeout=5))] += 1
    return answered


async def main() -> None:
    if not hasattr(socket, "SO_REUSEPORT"):
        print("this system has no SO_REUSEPORT")
        return
    async with (
        trionet.WebSocketServer.new(answering("first"), port=0, reuse_port=True) as first,
        trionet.WebSocketServer.new(
            answering("second"), port=first.port, reuse_port=True
        ) as second,
    ):
        assert first.port == second.port
        answered = await trio.to_thread.run_sync(clients, first.port, 40)
        print(f"both servers listen on port {first.port}")
        print(f"40 clients answered: {sum(answered.values())}")
        print(f"spread: {dict(sorted(answered.items()))}")

    # TCPListener: the same keyword, the same effect.
    async with (
        trionet.TCPListener.new(0, greet, host="127.0.0.1", reuse_port=True) as one,
        trionet.TCPListener.new(one.port, greet, host="127.0.0.1", reuse_port=True),
    ):
        print("two TCPListeners share a port too")


if __name__ == "__main__":
    trio.run(main)
