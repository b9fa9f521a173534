"""``python -m trionet chat``: a chat room and its page on one port, on the public API only.

The page (``trionet/chat/index.html``, HTML with inline CSS and JavaScript) is served at
``/`` by the server's ``http_handler``; the page connects back to ``/ws``.  Every frame the
server sends is a JSON object with a ``type``:

* ``{"type": "welcome", "name": ..., "members": [...], "max_text": ...}``, to a client that
  has just joined: the name it got and who is here;
* ``{"type": "join", "name": ...}`` and ``{"type": "leave", "name": ...}``, to everyone;
* ``{"type": "message", "name": ..., "text": ...}``, to everyone, the sender included;
* ``{"type": "error", "reason": ...}``, to one client whose message was refused.

A client sends ``{"type": "message", "text": ...}`` (any frame that is not a JSON object
is taken as the text itself, so ``python -m trionet client`` can chat too) and may name
itself with ``?name=`` on the WebSocket URL; a client without ``?name=`` joins with its
first frame, which may be ``{"type": "hello", "name": ...}``.  Names default to
``guest-<id>``.  Messages go out through :meth:`~trionet.WebSocketServer.broadcast`, which
never waits, so a slow or dead client delays nobody else.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import logging
import re
import signal
import sys
import unicodedata
from contextlib import AbstractAsyncContextManager
from functools import cache
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

import trio

from ._exceptions import ConnectionClosedError, ListenError
from ._util import url_host
from ._wsconnection import WebSocketConnection
from ._wsevents import WebSocketEvent, WebSocketRequest
from ._wsserver import WebSocketServer

__all__ = [
    "MAX_NAME",
    "MAX_TEXT",
    "ChatRoom",
    "clean_name",
    "add_chat_command",
    "open_chat_server",
    "page",
    "run_chat",
    "serve_chat",
]

log = logging.getLogger("trionet.chat")

# A chat line, not a document: 1,000 characters is a long paragraph, and it keeps every
# broadcast small (the whole room receives each one).  A name is a label in a list.
MAX_TEXT = 1000
MAX_NAME = 32
# The largest frame accepted: a 1,000-character message as JSON, each character escaped
# in the worst case ("\ud83d\ude00" is 12 bytes for one emoji), plus the envelope.  A
# larger frame cannot be a valid message, so the connection closes with 1009 without the
# server reading it all.
MAX_FRAME = 16 * 1024

_HTML_TYPE = "text/html; charset=utf-8"
_INLINE = re.compile(r"<(script|style)>(.*?)</\1>", re.DOTALL)


@cache
def page() -> tuple[bytes, str]:
    """The chat page and the ``Content-Security-Policy`` that allows exactly its code.

    The inline ``<script>`` and ``<style>`` are allowed by their SHA-256 hashes, so no
    other script runs on the page, even one that an HTML injection slipped in.
    """
    html = resources.files("trionet").joinpath("chat/index.html").read_text(encoding="utf-8")
    hashes: dict[str, list[str]] = {"script": [], "style": []}
    for tag, body in _INLINE.findall(html):
        digest = base64.b64encode(hashlib.sha256(body.encode("utf-8")).digest()).decode()
        hashes[tag].append(f"'sha256-{digest}'")
    policy = "; ".join(
        [
            "default-src 'none'",
            "script-src " + " ".join(hashes["script"]),
            "style-src " + " ".join(hashes["style"]),
            "connect-src 'self'",
            "img-src data:",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )
    return html.encode("utf-8"), policy


def clean_name(raw: object, default: str) -> str:
    """A display name: printable characters only, spaces collapsed, at most ``MAX_NAME``.

    White space of any kind becomes one space; other control, format (bidirectional
    overrides, zero-width) and unassigned characters are dropped; an empty result gives
    ``default``.
    """
    if not isinstance(raw, str):
        return default
    kept = "".join(
        c if unicodedata.category(c)[0] not in "CZ" else " " if c.isspace() else "" for c in raw
    )
    name = " ".join(kept.split())[:MAX_NAME].strip()
    return name or default


class _Member:
    """One client of the room: joins, leaves and messages (a connection handler)."""

    def __init__(self, room: ChatRoom, name: str | None) -> None:
        self.room = room  # the room it belongs to
        self.name = name  # None until it has joined

    async def on_open(self, ws: WebSocketConnection, event: WebSocketEvent) -> None:
        if self.name is not None:
            await self.room.join(ws, self)

    async def on_message(self, ws: WebSocketConnection, event: WebSocketEvent) -> None:
        data = event.data
        if not isinstance(data, str):
            await _refuse(ws, "binary messages are not supported; send text")
            return
        envelope = _parse(data)
        kind = envelope.get("type")
        if self.name is None:
            hello = kind == "hello"
            default = f"guest-{ws.id}"
            self.name = clean_name(envelope.get("name"), default) if hello else default
            await self.room.join(ws, self)
            if hello:
                return
        if kind != "message":
            await _refuse(ws, f"unknown message type {str(kind)[:40]!r}")
            return
        text = envelope.get("text")
        if not isinstance(text, str):
            await _refuse(ws, "a message needs a text string")
        elif len(text) > MAX_TEXT:
            await _refuse(ws, f"message too long: {len(text)} characters, the limit is {MAX_TEXT}")
        elif text.strip():
            ws.wss.broadcast({"type": "message", "name": self.name, "text": text})

    def on_terminate(self, ws: WebSocketConnection, event: WebSocketEvent) -> None:
        if self.name is not None:
            self.room.leave(ws, self)


def _parse(data: str) -> dict[str, Any]:
    """A client frame as an envelope: a JSON object, or else the whole frame as text."""
    try:
        value = json.loads(data)
    except ValueError:
        value = None
    if isinstance(value, dict):
        return value
    return {"type": "message", "text": data}


async def _refuse(ws: WebSocketConnection, reason: str) -> None:
    """Tell one client why its message was not delivered (only its own task waits)."""
    await _send(ws, {"type": "error", "reason": reason})


async def _send(ws: WebSocketConnection, envelope: dict[str, Any]) -> None:
    """Send to one client; one that has gone meanwhile is no error (it leaves anyway)."""
    try:
        await ws.send(envelope)
    except ConnectionClosedError:
        log.debug("%s closed before %s could be sent", ws, envelope["type"])


class ChatRoom:
    """The chat server's handler: a :class:`~trionet.WebSocketServer` server handler.

    Pass it as ``handler`` and :meth:`http` as ``http_handler`` (see
    :func:`open_chat_server`).  Attributes hold no I/O: the server owns the connections.
    """

    def __init__(self) -> None:
        self.members: dict[WebSocketConnection, str] = {}  # joined clients and their names

    def on_connection(self, wss: WebSocketServer, event: WebSocketEvent) -> _Member | None:
        """Accept a WebSocket from anywhere but another site's page (HTTP 403 then)."""
        request = event.request
        assert request is not None
        if not _same_origin(request):
            log.info("refused a WebSocket from origin %r", request.headers.get("origin"))
            return None
        raw = request.query.get("name")
        if raw is None:
            return _Member(self, None)  # named by its first frame
        if isinstance(raw, list):
            raw = raw[0]
        return _Member(self, clean_name(raw, ""))

    async def join(self, ws: WebSocketConnection, member: _Member) -> None:
        """Announce ``member`` to the others and welcome it."""
        if not member.name:
            member.name = f"guest-{ws.id}"
        self.members[ws] = member.name
        log.info("%s joined", member.name)
        ws.wss.broadcast({"type": "join", "name": member.name}, exclude=[ws])
        await _send(
            ws,
            {
                "type": "welcome",
                "name": member.name,
                "members": sorted(self.members.values()),
                "max_text": MAX_TEXT,
            },
        )

    def leave(self, ws: WebSocketConnection, member: _Member) -> None:
        """Announce that ``member`` left."""
        name = self.members.pop(ws, None)
        if name is not None:
            log.info("%s left", name)
            ws.wss.broadcast({"type": "leave", "name": name})

    def http(self, request: WebSocketRequest) -> tuple[int, list[tuple[str, str]], bytes]:
        """Plain HTTP on the chat port: the page at ``/``, 426 at ``/ws``, 404 elsewhere."""
        if request.path == "/ws":
            return 426, [("Upgrade", "websocket")], b"this endpoint speaks WebSocket only\n"
        if request.path != "/":
            return 404, [], f"nothing at {request.path}\n".encode()
        if request.method not in ("GET", "HEAD"):
            return 405, [("Allow", "GET, HEAD")], b"method not allowed\n"
        body, policy = page()
        headers = [
            ("Content-Type", _HTML_TYPE),
            ("Content-Security-Policy", policy),
            ("X-Content-Type-Options", "nosniff"),
            ("Referrer-Policy", "no-referrer"),
            ("Cache-Control", "no-cache"),
        ]
        return 200, headers, body if request.method == "GET" else b""


def _same_origin(request: WebSocketRequest) -> bool:
    """No ``Origin`` (not a browser) or one whose host and port are this server's."""
    origin = request.headers.get("origin")
    host = request.headers.get("host")
    if origin is None:
        return True
    if not isinstance(origin, str) or not isinstance(host, str):
        return False
    return urlsplit(origin).netloc.lower() == host.lower()


def open_chat_server(
    host: str | None = "127.0.0.1", port: int = 0, **limits: Any
) -> AbstractAsyncContextManager[WebSocketServer]:
    """The chat server: the page at ``/`` and the room at ``/ws``, on ``host:port``.

    Args:
        host: Address to bind (``None``: every interface).
        port: TCP port; 0 picks a free one (read it from the server's ``port``).
        **limits: More :meth:`~trionet.WebSocketServer.new` limits (``max_message_size``
            defaults to ``MAX_FRAME``).

    Returns:
        An async context manager yielding the listening :class:`~trionet.WebSocketServer`;
        leaving it closes every client with 1001.
    """
    room = ChatRoom()
    limits.setdefault("max_message_size", MAX_FRAME)
    return WebSocketServer.new(
        room, host=host, port=port, path="/ws", http_handler=room.http, **limits
    )


async def serve_chat(host: str, port: int) -> None:
    """Run the chat server until SIGINT or SIGTERM; print the URL and ``READY``."""
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with open_chat_server(host, port) as wss:
            shown = "127.0.0.1" if host in ("", "0.0.0.0") else host
            print(
                f"chat on http://{url_host(shown)}:{wss.port}/ (open it in a browser)", flush=True
            )
            print("READY", flush=True)
            async for signum in signals:
                log.info("received %s, shutting down", signal.Signals(signum).name)
                break
        # Leaving the block sent 1001 to every client and waited for their close frames.


def add_chat_command(commands: Any, port_type: Any) -> None:
    """Add the ``chat`` subcommand to ``python -m trionet``'s subparsers."""
    chat = commands.add_parser(
        "chat",
        help="run the chat demo: a page at / and its WebSocket at /ws",
        description="Serve the chat page at http://HOST:PORT/ and its WebSocket endpoint at "
        f"/ws on the same port. Messages longer than {MAX_TEXT} characters are refused. "
        "Prints the URL to open and READY once listening; Ctrl-C or SIGTERM stops it "
        "(clients get close code 1001).",
    )
    chat.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    chat.add_argument(
        "--port", type=port_type, default=8000, help="port to listen on (default 8000; 0: pick one)"
    )


def run_chat(args: argparse.Namespace) -> int:
    """Run ``python -m trionet chat`` with parsed ``args``; returns the exit status."""
    try:
        trio.run(serve_chat, args.host, args.port)
    except ListenError as exc:
        print(f"chat: {exc}", file=sys.stderr)
        return 1
    return 0
