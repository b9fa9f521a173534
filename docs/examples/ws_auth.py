"""Authenticate WebSocket clients in ``on_connection``, from a header or the query.

``on_connection`` runs when the handshake request has arrived, before the server
answers it.  ``event.request.headers`` and ``event.request.query`` hold what the client
sent; returning ``None`` refuses the client with HTTP 403 and no connection is made.

Run ``python ws_auth.py``: three clients try (a header token, a query token, no token),
and the program prints who got in.
"""

from __future__ import annotations

import hmac

import trio
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

import trionet

TOKENS = {"s3cret-alice": "alice", "s3cret-bob": "bob"}


def user_for(request: trionet.WebSocketRequest) -> str | None:
    """The user a request authenticates as, or ``None``."""
    token = request.query.get("token")  # a str, or a list if ?token= came twice
    header = request.headers.get("authorization", "")  # names are lower-cased
    if isinstance(header, str) and header.startswith("Bearer "):
        token = header.removeprefix("Bearer ")
    if not isinstance(token, str):
        return None
    for known, user in TOKENS.items():
        if hmac.compare_digest(token, known):  # no timing hints about the token
            return user
    return None


class Greeter:
    def __init__(self, user: str) -> None:
        self.user = user

    async def on_message(
        self, ws: trionet.WebSocketConnection, event: trionet.WebSocketEvent
    ) -> None:
        await ws.send(f"{self.user} said {event.data}")


class Server:
    def on_connection(
        self, wss: trionet.WebSocketServer, event: trionet.WebSocketEvent
    ) -> Greeter | None:
        assert event.request is not None
        user = user_for(event.request)
        if user is None:
            return None  # HTTP 403 Forbidden
        return Greeter(user)


def attempt(url: str, headers: dict[str, str] | None = None) -> str:
    try:
        with connect(url, additional_headers=headers) as websocket:
            websocket.send("hi")
            return str(websocket.recv(timeout=5))
    except InvalidStatus as refused:
        return f"refused with HTTP {refused.response.status_code}"


def clients(port: int) -> None:
    url = f"ws://127.0.0.1:{port}/"
    print("header:", attempt(url, {"Authorization": "Bearer s3cret-alice"}))
    print("query:", attempt(url + "?token=s3cret-bob"))
    print("none:", attempt(url))


async def main() -> None:
    with trio.fail_after(10):
        async with trionet.WebSocketServer.new(Server(), port=0) as wss:
            await trio.to_thread.run_sync(clients, wss.port)


if __name__ == "__main__":
    trio.run(main)
