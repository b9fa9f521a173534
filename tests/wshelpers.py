"""Shared pieces of the WebSocket server tests: a recording handler and a raw-socket client.

The raw client speaks RFC 6455 by hand (struct and a mask), so the frame tests do not
depend on any WebSocket library's idea of what a peer may send.
"""

from __future__ import annotations

import base64
import os
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio

import trionet
from trionet._wshandshake import (
    ClientHandshake,
    HandshakeLimits,
    HeadReader,
    ServerHandshake,
    parse_request,
)
from trionet._wsproto import FrameLayer

HOST = "127.0.0.1"
TIMEOUT = 10  # every test's outer bound (seconds)

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10


class EchoConnection:
    """Echoes every message and records the connection's events."""

    def __init__(self, server: Recorder) -> None:
        self.server = server
        self.events: list[Any] = []
        self.terminated = trio.Event()

    async def on_open(self, ws: Any, event: Any) -> None:
        self.events.append(event)

    async def on_message(self, ws: Any, event: Any) -> None:
        self.events.append(event)
        if self.server.fail_on is not None and event.data == self.server.fail_on:
            raise RuntimeError("the handler failed on purpose")
        await ws.send(event.data)

    def on_error(self, ws: Any, event: Any) -> None:
        self.events.append(event)

    def on_terminate(self, ws: Any, event: Any) -> None:
        self.events.append(event)
        self.terminated.set()

    def of(self, kind: str) -> list[Any]:
        return [e for e in self.events if e.type == kind]


class Recorder:
    """A server handler that accepts everyone (unless ``refuse``) with an echo handler."""

    def __init__(self, *, refuse: bool = False, fail_on: object = None) -> None:
        self.refuse = refuse
        self.fail_on = fail_on
        self.events: list[Any] = []
        self.conns: list[EchoConnection] = []
        self.accepted = trio.Event()
        self.error = trio.Event()

    def on_connection(self, wss: Any, event: Any) -> EchoConnection | None:
        self.events.append(event)
        if self.refuse:
            return None
        conn = EchoConnection(self)
        self.conns.append(conn)
        self.accepted.set()
        return conn

    def on_error(self, wss: Any, event: Any) -> None:
        self.events.append(event)
        self.error.set()

    def errors(self) -> list[str]:
        return [e.errors[0].message for e in self.events if e.type == "error"]

    async def last_terminated(self) -> EchoConnection:
        """The most recent connection, once its ``terminate`` event has come."""
        await self.accepted.wait()
        conn = self.conns[-1]
        await conn.terminated.wait()
        return conn


@asynccontextmanager
async def serve(handler: Any = None, **options: Any) -> AsyncIterator[Any]:
    """A WebSocketServer on 127.0.0.1 and a free port, with keepalive off by default."""
    options.setdefault("ping_interval", None)
    async with trionet.WebSocketServer.new(handler or Recorder(), host=HOST, **options) as wss:
        yield wss


# -- raw sockets ---------------------------------------------------------------------------


def upgrade_request(
    path: str = "/", *, version: str = "13", key: str | None = None, extra: str = ""
) -> bytes:
    key = key if key is not None else base64.b64encode(os.urandom(16)).decode()
    lines = [
        f"GET {path} HTTP/1.1",
        "Host: 127.0.0.1",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Version: {version}",
    ]
    if key:
        lines.append(f"Sec-WebSocket-Key: {key}")
    text = "\r\n".join(lines) + "\r\n" + extra + "\r\n"
    return text.encode("latin-1")


async def read_response(stream: trio.abc.Stream) -> tuple[int, dict[str, str], bytes]:
    """Read an HTTP response to its end (``Connection: close``): status, headers, body."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = await stream.receive_some()
        if not chunk:
            raise AssertionError(f"closed before a response head: {data!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if status != 101:
        length = int(headers.get("content-length", "0"))
        while len(body) < length:
            chunk = await stream.receive_some()
            if not chunk:
                break
            body += chunk
    return status, headers, body


def frame(
    opcode: int, payload: bytes = b"", *, fin: bool = True, rsv: int = 0, masked: bool = True
) -> bytes:
    """One client frame: ``rsv`` is the 3-bit RSV1..3 field, masked unless told otherwise."""
    first = (0x80 if fin else 0) | (rsv << 4) | opcode
    length = len(payload)
    mask_bit = 0x80 if masked else 0
    if length < 126:
        header = struct.pack("!BB", first, mask_bit | length)
    elif length < 1 << 16:
        header = struct.pack("!BBH", first, mask_bit | 126, length)
    else:
        header = struct.pack("!BBQ", first, mask_bit | 127, length)
    if not masked:
        return header + payload
    mask = os.urandom(4)
    return header + mask + mask_payload(payload, mask)


def mask_payload(payload: bytes, mask: bytes) -> bytes:
    if not payload:
        return b""
    key = (mask * (len(payload) // 4 + 1))[: len(payload)]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(
        len(payload), "big"
    )


def close_frame(code: int | None = None, reason: bytes = b"") -> bytes:
    payload = b"" if code is None else struct.pack("!H", code) + reason
    return frame(OP_CLOSE, payload)


class RawClient:
    """A WebSocket client on a bare TCP stream; reads the server's (unmasked) frames."""

    def __init__(self, stream: trio.SocketStream, rest: bytes = b"") -> None:
        self.stream = stream
        self.buffer = bytearray(rest)
        self.headers: dict[str, str] = {}

    async def send(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def _fill(self, size: int) -> bool:
        while len(self.buffer) < size:
            chunk = await self.stream.receive_some()
            if not chunk:
                return False
            self.buffer += chunk
        return True

    async def read_frame(self) -> tuple[int, int, bytes] | None:
        """``(first byte, opcode, payload)`` of the next frame, ``None`` at EOF."""
        if not await self._fill(2):
            return None
        first, second = self.buffer[0], self.buffer[1]
        assert not second & 0x80, "server frames are never masked"
        length, offset = second & 0x7F, 2
        if length == 126:
            await self._fill(4)
            (length,) = struct.unpack("!H", self.buffer[2:4])
            offset = 4
        elif length == 127:
            await self._fill(10)
            (length,) = struct.unpack("!Q", self.buffer[2:10])
            offset = 10
        assert await self._fill(offset + length), "EOF inside a frame"
        payload = bytes(self.buffer[offset : offset + length])
        del self.buffer[: offset + length]
        return first, first & 0x0F, payload

    async def read_close(self) -> tuple[int | None, str]:
        """Skip data frames up to the server's close frame: its code and reason."""
        while True:
            got = await self.read_frame()
            assert got is not None, "EOF before the server's close frame"
            _, opcode, payload = got
            if opcode == OP_CLOSE:
                if not payload:
                    return None, ""
                return struct.unpack("!H", payload[:2])[0], payload[2:].decode()

    async def at_eof(self) -> bool:
        """Whether the server closed TCP with nothing more sent (FIN)."""
        return not self.buffer and await self.stream.receive_some() == b""

    async def finish(self) -> None:
        """Expect the server's FIN, then close our side (the server waits for our FIN)."""
        assert await self.at_eof()
        await self.stream.aclose()


@asynccontextmanager
async def raw_client(
    port: int, path: str = "/", *, extra: str = "", expect: int = 101
) -> AsyncIterator[RawClient]:
    """A raw connection whose upgrade got ``expect`` (101 by default)."""
    stream = await trio.open_tcp_stream(HOST, port)
    async with stream:
        await stream.send_all(upgrade_request(path, extra=extra))
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = await stream.receive_some()
            assert chunk, f"closed during the handshake: {data!r}"
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        status = int(head.split()[1])
        assert status == expect, head
        client = RawClient(stream, rest)
        for line in head.decode("latin-1").split("\r\n")[1:]:
            name, _, value = line.partition(":")
            client.headers[name.strip().lower()] = value.strip()
        yield client


def frame_layers(
    *,
    accelerate: bool,
    data_type: str = "text",
    max_message_size: int = 1 << 22,
    max_fragments: int | None = None,
) -> tuple[FrameLayer, FrameLayer]:
    """A server and a client frame layer (sans-I/O), connected by a real handshake."""
    limits = HandshakeLimits()
    client = ClientHandshake(
        "127.0.0.1", "/", subprotocols=(), extensions=[], headers=(), limits=limits
    )
    done = HeadReader(limits).feed(client.request_bytes)
    assert done is not None
    request, _raw = parse_request(done[0], limits, ("127.0.0.1", 1))
    _response, server_conn = ServerHandshake(request, done[0]).accept(None, [])
    opened = client.feed(_response)
    assert opened is not None
    server = FrameLayer(
        server_conn,
        data_type=data_type,
        max_message_size=max_message_size,
        max_fragments=max_fragments,
        accelerate=accelerate,
    )
    return server, FrameLayer(opened[0], data_type="text", max_message_size=1 << 22)
