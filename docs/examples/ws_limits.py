"""Set a WebSocket server's limits, and see what a client gets when it passes one.

Every limit is a keyword of ``WebSocketServer.new``.  A message over
``max_message_size`` (counted after decompression) ends the connection with close code
1009; ``wss.memory_budget`` says how much buffer memory one connection may hold with the
settings chosen.

Run ``python ws_limits.py``: it starts a server with small limits, sends one message
that fits and one that does not, and prints the close code and the budget.
"""

from __future__ import annotations

import trio
from websockets.exceptions import ConnectionClosedError
from websockets.sync.client import connect

import trionet


async def serve(ws: trionet.WebSocketConnection) -> None:
    async for event in ws.events():
        if event.type == "message":
            await ws.send(event.data)
        elif event.type == "error":
            print(f"server: {event.errors[0].message}")


def client(port: int) -> None:
    with connect(f"ws://127.0.0.1:{port}/") as websocket:
        websocket.send("x" * 4096)
        print(f"client: 4096 characters echoed: {len(websocket.recv(timeout=5)) == 4096}")
        websocket.send("x" * 4097)
        try:
            websocket.recv(timeout=5)
        except ConnectionClosedError as closed:
            code = closed.rcvd.code if closed.rcvd else None
            print(f"client: closed by the server with {code}")


async def main() -> None:
    with trio.fail_after(10):
        async with trionet.WebSocketServer.new(
            serve,
            port=0,
            max_message_size=4096,  # bytes per message, after decompression
            max_queue=8,  # messages waiting in ws.events()
            open_timeout=5.0,  # TLS and the opening handshake
            close_timeout=2.0,  # the closing handshake
            ping_interval=10.0,  # keepalive: ping a connection idle this long...
            ping_timeout=10.0,  # ...and close it (1011) if nothing arrives this long after
            compression=False,  # no permessage-deflate
            limits=trionet.HandshakeLimits(max_headers=32, max_head=16384),
        ) as wss:
            await trio.to_thread.run_sync(client, wss.port)
            print(f"budget: {wss.memory_budget['total']} bytes per connection at most")


if __name__ == "__main__":
    trio.run(main)
