"""Large messages go out without being joined to their header (gather writes).

``FrameLayer.message_parts`` returns a frame as ``(payload, header)``, and
``Transport.send_locked(data, head)`` writes what is pending, the header and the payload
with one ``sendmsg``.  What the peer receives must be exactly what the joined frame would
have been, in order, however the kernel splits the writes.
"""

from __future__ import annotations

import socket
from typing import Any

import pytest
import trio

from trionet._sockets import SocketTransport
from trionet._wsproto import GATHER_FROM, MESSAGE

from .wshelpers import frame_layers

SIZES = [0, 1, 125, 126, 65535, 65536, GATHER_FROM + 1, 1 << 20]


def _message(kind: type, size: int) -> Any:
    text = "".join(chr(0x41 + i % 26) for i in range(size))
    if kind is str:
        return text
    if kind is memoryview:
        return memoryview(text.encode())
    return kind(text.encode())


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("kind", [str, bytes, bytearray, memoryview])
def test_parts_are_the_frame_split_after_its_header(kind: type, size: int) -> None:
    server, client = frame_layers(accelerate=True, data_type="blob")
    data = _message(kind, size)
    payload, head = server.message_parts(data)
    assert head + payload == server.message(data)
    assert len(head) == (2 if size < 126 else 4 if size < 65536 else 10)
    expected = data if kind is str else bytes(data)
    assert client.feed(head + payload) == [(MESSAGE, expected, size)]


def test_a_client_frame_comes_whole() -> None:
    server, client = frame_layers(accelerate=True, data_type="blob")
    frame, head = client.message_parts(b"x" * 70000)  # masked by wsproto: not split
    assert head == b""
    assert server.feed(frame) == [(MESSAGE, b"x" * 70000, 70000)]


class _ThrottledSocket:
    """Takes at most ``step`` bytes per call and records every call."""

    def __init__(self, step: int) -> None:
        self.step = step
        self.wire = bytearray()
        self.calls: list[str] = []

    def _take(self, data: bytes) -> int:
        taken = data[: self.step]
        self.wire += taken
        return len(taken)

    def sendmsg(self, buffers: Any) -> int:
        self.calls.append("sendmsg")
        return self._take(b"".join(bytes(b) for b in buffers))

    def send(self, data: Any) -> int:
        self.calls.append("send")
        return self._take(bytes(data))


@pytest.mark.parametrize("step", [1, 3, 10, 4096, 1 << 30])
async def test_pending_head_and_data_reach_the_wire_in_order(step: int) -> None:
    sock = _ThrottledSocket(step)
    transport = SocketTransport(sock, no_delay=True)  # type: ignore[arg-type]
    transport.pending += b"earlier answers;"
    head, data = b"HEADER", bytes(range(256)) * 40
    with trio.fail_after(5):
        async with transport.gate:
            await transport.send_locked(data, head)
    assert bytes(sock.wire) == b"earlier answers;" + head + data
    assert not transport.pending
    # Gather writes while part of the header is unsent, plain sends for the rest.
    gathers = -(-(len(b"earlier answers;") + len(head)) // step)  # ceiling division
    assert sock.calls[:gathers] == ["sendmsg"] * gathers
    assert set(sock.calls[gathers:]) <= {"send"}
    if step > len(sock.wire):
        assert sock.calls == ["sendmsg"]  # a socket with room takes it all in one call


async def test_a_large_send_over_loopback_arrives_whole() -> None:
    left, right = socket.socketpair()
    left.setblocking(False)
    transport = SocketTransport(left, no_delay=True)
    head, data = b"HEAD", bytes(range(251)) * ((4 << 20) // 251)
    received = bytearray()

    async def read_all() -> None:
        with right:
            right.setblocking(False)
            while len(received) < len(head) + len(data):
                await trio.lowlevel.wait_readable(right)
                received.extend(right.recv(1 << 16))

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(read_all)
            await transport.send(b"")  # nothing: no write at all
            async with transport.gate:
                await transport.send_locked(data, head)
    await transport.aclose()
    assert bytes(received) == head + data
