"""Hypothesis bytes before and after the handshake: no exception escapes, no hang, still serving."""

from __future__ import annotations

from typing import Any

import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .wshelpers import HOST, OP_TEXT, Recorder, frame, raw_client, serve

FUZZ = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


async def _drain(stream: trio.SocketStream) -> None:
    """Read until the server ends the connection (bounded by the caller)."""
    try:
        while await stream.receive_some():
            pass
    except trio.BrokenResourceError:
        pass


async def _still_serves(wss: Any) -> None:
    async with raw_client(wss.port) as client:
        await client.send(frame(OP_TEXT, b"alive"))
        assert await client.read_frame() == (0x81, OP_TEXT, b"alive")


def _run(body: Any) -> None:
    async def main() -> None:
        recorder = Recorder()
        with trio.fail_after(10):
            async with serve(recorder, open_timeout=0.5, close_timeout=0.5) as wss:
                await body(wss)
                await _still_serves(wss)
                assert len(wss.errors) <= 1000

    trio.run(main)


@FUZZ
@given(st.binary(max_size=2048))
def test_bytes_before_the_handshake(data: bytes) -> None:
    async def body(wss: Any) -> None:
        async with await trio.open_tcp_stream(HOST, wss.port) as stream:
            try:
                await stream.send_all(data)
                await stream.send_eof()
            except trio.BrokenResourceError:
                return
            with trio.fail_after(3):
                await _drain(stream)

    _run(body)


@FUZZ
@given(st.binary(max_size=2048))
def test_bytes_after_the_handshake(data: bytes) -> None:
    async def body(wss: Any) -> None:
        async with raw_client(wss.port) as client:
            try:
                await client.send(data)
                await client.stream.send_eof()
            except trio.BrokenResourceError:
                return
            with trio.fail_after(3):
                await _drain(client.stream)

    _run(body)


@FUZZ
@given(st.lists(st.tuples(st.integers(0, 15), st.binary(max_size=200), st.booleans()), max_size=8))
def test_frame_sequences_after_the_handshake(frames: list[tuple[int, bytes, bool]]) -> None:
    async def body(wss: Any) -> None:
        async with raw_client(wss.port) as client:
            try:
                for opcode, payload, fin in frames:
                    await client.send(frame(opcode, payload, fin=fin))
                await client.stream.send_eof()
            except trio.BrokenResourceError:
                return
            with trio.fail_after(3):
                await _drain(client.stream)

    _run(body)
