"""A small chat server: every message goes to every other client with ``broadcast()``.

``wss.broadcast(message, exclude=[ws])`` queues the message for every open connection
except the sender and returns at once; each client's copy is sent by a task of its own,
so a slow client delays nobody else.

Run ``python ws_broadcast.py``: three clients (the ``websockets`` synchronous client, in
a thread) join, two of them speak, and each prints what it heard.
"""

from __future__ import annotations

from contextlib import ExitStack

import trio
from websockets.sync.client import ClientConnection, connect

import trionet


class Member:
    """One chat member; the name comes from the query string, ``/chat?name=alice``."""

    def __init__(self, name: str) -> None:
        self.name = name

    async def on_open(self, ws: trionet.WebSocketConnection, event: trionet.WebSocketEvent) -> None:
        await ws.send(f"welcome, {self.name}")

    def on_message(self, ws: trionet.WebSocketConnection, event: trionet.WebSocketEvent) -> None:
        count = ws.wss.broadcast(f"{self.name}: {event.data}", exclude=[ws])
        print(f"server: {self.name}'s message queued for {count} clients")


class ChatServer:
    def on_connection(self, wss: trionet.WebSocketServer, event: trionet.WebSocketEvent) -> Member:
        assert event.request is not None
        return Member(event.request.query.get("name", "anonymous"))


def heard(websocket: ClientConnection) -> list[str]:
    """Everything the client received until the server has been quiet for 0.2 s."""
    messages = []
    while True:
        try:
            messages.append(websocket.recv(timeout=0.2))
        except TimeoutError:
            return messages


def chat(port: int) -> dict[str, list[str]]:
    names = ["alice", "bob", "carol"]
    with ExitStack() as stack:
        clients = {
            name: stack.enter_context(connect(f"ws://127.0.0.1:{port}/chat?name={name}"))
            for name in names
        }
        for name, websocket in clients.items():
            # The welcome shows that the server has registered this client.
            assert websocket.recv(timeout=5) == f"welcome, {name}"
        clients["alice"].send("hi all")
        # Bob answers once he has heard Alice, so Carol hears them in that order.
        first = clients["bob"].recv(timeout=5)
        clients["bob"].send("hello, alice")
        transcript = {name: heard(websocket) for name, websocket in clients.items()}
        transcript["bob"].insert(0, first)
        return transcript


async def main() -> None:
    with trio.fail_after(10):
        async with trionet.WebSocketServer.new(ChatServer(), port=0, path="/chat") as wss:
            transcript = await trio.to_thread.run_sync(chat, wss.port)
    for name, messages in transcript.items():
        print(f"{name} heard {messages}")
    assert transcript["carol"] == ["alice: hi all", "bob: hello, alice"]


if __name__ == "__main__":
    trio.run(main)
