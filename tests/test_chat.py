"""The chat demo (``python -m trionet chat``): protocol, limits, page, command line."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
from websockets.sync.client import connect

import trionet
from trionet._chat import MAX_NAME, MAX_TEXT, open_chat_server

HOST = "127.0.0.1"


class Client:
    """A trionet WebSocket client that reads the chat's JSON envelopes."""

    def __init__(self, ws: trionet.WebSocketConnection) -> None:
        self.ws = ws
        self.events = ws.events()

    async def envelope(self) -> dict[str, Any]:
        while True:
            event = await self.events.receive()
            if event.type == "message":
                value = json.loads(event.data)
                assert isinstance(value, dict)
                return value
            assert event.type == "open", event

    async def ending(self) -> trionet.WebSocketEvent:
        """Skip envelopes up to the terminate event."""
        async for event in self.events:
            if event.type == "terminate":
                return event
        raise AssertionError("no terminate event")

    async def say(self, text: str) -> None:
        await self.ws.send({"type": "message", "text": text})


@asynccontextmanager
async def member(port: int, query: str = "", **options: Any) -> AsyncIterator[Client]:
    async with trionet.WebSocket.new(f"ws://{HOST}:{port}/ws{query}", **options) as ws:
        yield Client(ws)


@asynccontextmanager
async def joined(port: int, name: str) -> AsyncIterator[Client]:
    """A client that has joined as ``name`` (its welcome read)."""
    async with member(port, f"?name={name}") as client:
        welcome = await client.envelope()
        assert welcome["type"] == "welcome"
        assert welcome["name"] == name
        yield client


async def test_join_message_leave() -> None:
    with trio.fail_after(10):
        async with open_chat_server() as wss:
            async with joined(wss.port, "alice") as alice:
                async with joined(wss.port, "bob") as bob:
                    assert await alice.envelope() == {"type": "join", "name": "bob"}
                    await alice.say("hello <b>bob</b> & all")
                    expected = {
                        "type": "message",
                        "name": "alice",
                        "text": "hello <b>bob</b> & all",
                    }
                    assert await bob.envelope() == expected
                    assert await alice.envelope() == expected  # echoed to the sender
                    await bob.ws.send("plain text frames are messages too")
                    assert (await alice.envelope())["text"] == "plain text frames are messages too"
                assert await alice.envelope() == {"type": "leave", "name": "bob"}


async def test_welcome_lists_members_and_limit() -> None:
    with trio.fail_after(10):
        async with open_chat_server() as wss:
            async with joined(wss.port, "alice"):
                async with member(wss.port, "?name=bob") as bob:
                    welcome = await bob.envelope()
                    assert welcome == {
                        "type": "welcome",
                        "name": "bob",
                        "members": ["alice", "bob"],
                        "max_text": MAX_TEXT,
                    }


async def test_names_are_sanitized_bounded_and_defaulted() -> None:
    with trio.fail_after(10):
        async with open_chat_server() as wss:
            raw = "%E2%80%AEevil%00%0A%09%20%20name%E2%80%8B" + "x" * 100
            async with member(wss.port, f"?name={raw}") as one:
                name = (await one.envelope())["name"]
                assert name.startswith("evil name")
                assert len(name) == MAX_NAME
                assert all(c.isprintable() for c in name)
            async with member(wss.port, "?name=%20%20") as blank:
                welcome = await blank.envelope()
                assert re.fullmatch(r"guest-\d+", welcome["name"])


async def test_hello_names_a_client_and_sync_clients_can_chat() -> None:
    """The ``websockets`` sync client, without ``?name=``: a first ``hello`` names it."""

    def carol(port: int) -> list[dict[str, Any]]:
        with connect(f"ws://{HOST}:{port}/ws", open_timeout=5, close_timeout=5) as ws:
            ws.send(json.dumps({"type": "hello", "name": "carol"}))
            got = [json.loads(ws.recv(timeout=5))]
            ws.send(json.dumps({"type": "message", "text": "hi from carol"}))
            got.append(json.loads(ws.recv(timeout=5)))
            return got

    with trio.fail_after(15):
        async with open_chat_server() as wss:
            async with joined(wss.port, "alice") as alice:
                got = await trio.to_thread.run_sync(carol, wss.port)
                assert got[0]["type"] == "welcome"
                assert got[0]["name"] == "carol"
                assert got[1] == {"type": "message", "name": "carol", "text": "hi from carol"}
                assert await alice.envelope() == {"type": "join", "name": "carol"}
                assert (await alice.envelope())["text"] == "hi from carol"
                assert await alice.envelope() == {"type": "leave", "name": "carol"}


async def test_first_frame_without_hello_joins_as_guest() -> None:
    with trio.fail_after(10):
        async with open_chat_server() as wss:
            async with member(wss.port) as anon:
                assert (await anon.events.receive()).type == "open"
                await anon.say("first")
                welcome = await anon.envelope()
                assert re.fullmatch(r"guest-\d+", welcome["name"])
                message = await anon.envelope()
                assert message == {"type": "message", "name": welcome["name"], "text": "first"}


async def test_too_long_and_malformed_messages_are_refused_with_a_reason() -> None:
    with trio.fail_after(10):
        async with open_chat_server() as wss:
            async with joined(wss.port, "alice") as alice, joined(wss.port, "bob") as bob:
                await alice.envelope()  # bob joined
                await alice.say("x" * (MAX_TEXT + 1))
                refusal = await alice.envelope()
                assert refusal["type"] == "error"
                assert f"{MAX_TEXT + 1} characters" in refusal["reason"]
                assert str(MAX_TEXT) in refusal["reason"]
                await alice.ws.send(b"\x00binary")
                assert "binary" in (await alice.envelope())["reason"]
                await alice.ws.send({"type": "shout", "text": "hi"})
                assert "shout" in (await alice.envelope())["reason"]
                await alice.ws.send({"type": "message", "text": 42})
                assert (await alice.envelope())["type"] == "error"
                # Exactly the limit (in characters, not bytes) goes through; bob saw nothing
                # of the refused ones.
                longest = "é" * MAX_TEXT
                await alice.say(longest)
                assert (await bob.envelope())["text"] == longest
                assert (await alice.envelope())["text"] == longest


async def test_a_frame_no_message_can_fill_closes_with_1009() -> None:
    with trio.fail_after(10):
        async with open_chat_server() as wss:
            async with joined(wss.port, "alice") as alice:
                await alice.ws.send("x" * 20_000)
                ending = await alice.ending()
                assert ending.code == 1009


async def test_stalled_client_does_not_delay_the_others() -> None:
    """A client that stops reading fills its buffers; the others keep chatting.

    The stalled client is a raw socket with a small receive buffer that completes the
    upgrade and then reads nothing.  Once its backlog is full the server closes it (1008)
    and announces that it left; meanwhile every message reached bob promptly.
    """
    count, text = 400, "m" * 900
    with trio.fail_after(30):
        async with open_chat_server(close_timeout=1) as wss:
            async with joined(wss.port, "alice") as alice, joined(wss.port, "bob") as bob:
                await alice.envelope()  # bob joined
                stalled = socket.socket()
                stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                stalled.setblocking(False)
                try:
                    stream = trio.SocketStream(trio.socket.from_stdlib_socket(stalled))
                    await stream.socket.connect((HOST, wss.port))
                    await stream.send_all(
                        b"GET /ws?name=stalled HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                        b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                        b"Sec-WebSocket-Version: 13\r\n\r\n"
                    )
                    assert await alice.envelope() == {"type": "join", "name": "stalled"}
                    assert await bob.envelope() == {"type": "join", "name": "stalled"}
                    seen = 0
                    left = False
                    with trio.fail_after(15):
                        for i in range(count):
                            await alice.say(f"{i} {text}")
                            await alice.envelope()  # alice's own echo
                        while seen < count or not left:
                            envelope = await bob.envelope()
                            if envelope["type"] == "message":
                                assert envelope["text"] == f"{seen} {text}"
                                seen += 1
                            elif envelope == {"type": "leave", "name": "stalled"}:
                                left = True
                    assert seen == count
                finally:
                    stalled.close()


async def http(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    async with await trio.open_tcp_stream(HOST, port) as stream:
        await stream.send_all(request)
        data = b""
        while chunk := await stream.receive_some():
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body


async def test_page_served_at_root_with_strict_headers() -> None:
    with trio.fail_after(10):
        async with open_chat_server() as wss:
            status, headers, body = await http(
                wss.port, b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"
            )
    assert status == 200
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert headers["x-content-type-options"] == "nosniff"
    policy = headers["content-security-policy"]
    assert "default-src 'none'" in policy
    assert "unsafe-inline" not in policy
    assert "connect-src 'self'" in policy
    page = body.decode()
    assert '<meta name="viewport"' in page
    assert "innerHTML" not in page
    assert "http://" not in page.replace("http://www.w3.org", "")  # no external assets
    (script,) = re.findall(r"<script>(.*?)</script>", page, re.DOTALL)
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in policy


@pytest.mark.parametrize(
    ("request_line", "status"),
    [
        (b"GET /missing HTTP/1.1", 404),
        (b"GET /index.html HTTP/1.1", 404),
        (b"GET /ws HTTP/1.1", 426),
        (b"POST / HTTP/1.1", 405),
    ],
)
async def test_other_requests(request_line: bytes, status: int) -> None:
    with trio.fail_after(10):
        async with open_chat_server() as wss:
            got, headers, body = await http(
                wss.port, request_line + b"\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n"
            )
    assert got == status
    assert "content-security-policy" not in headers
    assert b"<script" not in body


async def test_head_gives_headers_only() -> None:
    with trio.fail_after(10):
        async with open_chat_server() as wss:
            status, headers, body = await http(wss.port, b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 200
    assert headers["content-type"].startswith("text/html")
    assert body == b""


async def test_websocket_from_another_sites_page_is_refused() -> None:
    with trio.fail_after(10):
        async with open_chat_server() as wss:
            evil = {"Origin": "http://evil.example"}
            async with member(wss.port, "?name=x", headers=evil) as refused:
                ending = await refused.ending()
                assert refused.ws.errors[0].http_status == 403
                assert ending.type == "terminate"
            own = {"Origin": f"http://{HOST}:{wss.port}"}
            async with member(wss.port, "?name=me", headers=own) as accepted:
                assert (await accepted.envelope())["name"] == "me"


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "trionet", *args], capture_output=True, text=True, timeout=30
    )


def test_help_lists_chat_and_chat_has_help() -> None:
    top = run_cli("--help")
    assert top.returncode == 0
    assert "chat" in top.stdout
    assert "echo" in top.stdout
    chat = run_cli("chat", "--help")
    assert chat.returncode == 0
    assert "--port" in chat.stdout
    assert "--host" in chat.stdout
    assert "8000" in chat.stdout


def test_chat_on_a_busy_port_says_why_and_fails() -> None:
    with socket.socket() as busy:
        busy.bind((HOST, 0))
        busy.listen()
        result = run_cli("chat", "--port", str(busy.getsockname()[1]))
    assert result.returncode == 1
    assert "chat:" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
async def test_cli_prints_url_and_ready_then_ends_with_1001(signum: signal.Signals) -> None:
    with trio.fail_after(30):
        process = await trio.lowlevel.open_process(
            [sys.executable, "-m", "trionet", "chat", "--port", "0", "--host", HOST],
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
        )
        assert process.stdout is not None
        try:
            lines = b""
            while b"READY\n" not in lines:
                chunk = await process.stdout.receive_some()
                assert chunk, f"exited before READY: {lines!r}"
                lines += chunk
            match = re.search(r"http://127\.0\.0\.1:(\d+)/", lines.decode())
            assert match is not None, lines
            port = int(match.group(1))
            assert port != 0
            status, _, page = await http(port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert status == 200
            assert b"trionet chat" in page
            async with joined(port, "alice") as alice:
                process.send_signal(signum)
                ending = await alice.ending()
                assert ending.code == 1001
            assert await process.wait() == 0
        finally:
            if process.returncode is None:  # pragma: no cover - only on failure
                process.kill()
                with trio.CancelScope(shield=True):
                    await process.wait()
