"""A WebSocket echo server written with handler objects, the way 4D writes it.

The server handler's ``on_connection`` sees the handshake request and returns a
connection handler; that handler's ``on_message`` sends every message back.  Text comes
back as text and binary as binary.

Run ``python ws_echo_handler.py``: it starts the server on a free port of 127.0.0.1,
talks to it with the ``websockets`` library's synchronous client (in a thread, so that
it does not block trio), prints what came back and exits.
"""

from __future__ import annotations

import trio
from websockets.sync.client import connect

import trionet


class Echo:
    """The connection handler: one per client, so it can keep per-client state."""

    def __init__(self) -> None:
        self.count = 0

    async def on_message(
        self, ws: trionet.WebSocketConnection, event: trionet.WebSocketEvent
    ) -> None:
        self.count += 1
        await ws.send(event.data)  # str goes out as text, bytes as binary

    def on_terminate(self, ws: trionet.WebSocketConnection, event: trionet.WebSocketEvent) -> None:
        print(f"server: connection {ws.id} ended with {event.code} after {self.count} messages")


class EchoServer:
    """The server handler: ``on_connection`` is the only mandatory callback."""

    def on_connection(self, wss: trionet.WebSocketServer, event: trionet.WebSocketEvent) -> Echo:
        assert event.request is not None
        print(f"server: handshake for {event.request.url}")
        return Echo()  # return None instead to refuse the client with HTTP 403

    def on_open(self, wss: trionet.WebSocketServer, event: trionet.WebSocketEvent) -> None:
        print("server: listening")

    def on_terminate(self, wss: trionet.WebSocketServer, event: trionet.WebSocketEvent) -> None:
        print("server: closed")


def client(port: int) -> list[str | bytes]:
    """A blocking client: send three messages, collect the echoes, close with 1000."""
    with connect(f"ws://127.0.0.1:{port}/echo") as websocket:
        answers = []
        for message in ["hello", b"\x00\x01\x02", "bye"]:
            websocket.send(message)
            answers.append(websocket.recv(timeout=5))
        return answers


async def main() -> None:
    with trio.fail_after(10):
        async with trionet.WebSocketServer.new(EchoServer(), port=0) as wss:
            answers = await trio.to_thread.run_sync(client, wss.port)
            print(f"client: {answers!r}")
            await wss.terminate()  # waits until every connection has closed


if __name__ == "__main__":
    trio.run(main)
