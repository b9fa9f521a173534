"""The WebSocket echo server again, as an ``async def serve(ws)`` function (trio style).

The server calls ``serve`` in a task of its own for every connection, accepting them all.
The function reads ``ws.events()``, an ``async for`` over the connection's events that
ends after ``terminate``.  When it returns, the connection closes with 1000.

Run ``python ws_echo_serve.py``: it serves on a free port of 127.0.0.1, sends a few
messages with the ``websockets`` synchronous client (in a thread), prints the echoes and
the close code the client received, and exits.
"""

from __future__ import annotations

from contextlib import suppress

import trio
from websockets.exceptions import ConnectionClosedOK
from websockets.sync.client import connect

import trionet


async def serve(ws: trionet.WebSocketConnection) -> None:
    """Echo every message; stop after "bye", which closes the connection with 1000."""
    async for event in ws.events():
        if event.type == "message":
            await ws.send(event.data)
            if event.data == "bye":
                return  # returning starts the closing handshake (code 1000)


def client(port: int) -> tuple[list[str | bytes], int | None]:
    """Send until "bye", then wait for the server's close frame."""
    with connect(f"ws://127.0.0.1:{port}/") as websocket:
        answers = []
        for message in ["one", b"two", "bye"]:
            websocket.send(message)
            answers.append(websocket.recv(timeout=5))
        with suppress(ConnectionClosedOK):  # raised when the server's close frame arrives
            websocket.recv(timeout=5)
        assert websocket.close_code is not None
        return answers, websocket.close_code


async def main() -> None:
    with trio.fail_after(10):
        async with trionet.WebSocketServer.new(serve, port=0) as wss:
            answers, code = await trio.to_thread.run_sync(client, wss.port)
            print(f"client: {answers!r}, closed by the server with {code}")


if __name__ == "__main__":
    trio.run(main)
