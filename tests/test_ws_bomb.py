"""A decompression bomb over permessage-deflate ends in 1009 with bounded memory."""

from __future__ import annotations

import gc
import zlib

import psutil
import pytest
import trio

from .wshelpers import (
    OP_BINARY,
    OP_CONT,
    OP_TEXT,
    TIMEOUT,
    Recorder,
    close_frame,
    frame,
    raw_client,
    serve,
)

DEFLATE = "Sec-WebSocket-Extensions: permessage-deflate\r\n"
BOMB_SIZE = 256 * 1024 * 1024  # inflated bytes


def deflated(size: int, chunk: bytes = bytes(1 << 20)) -> bytes:
    """``size`` zero bytes as one raw-deflate message (RFC 7692), built in small steps."""
    compressor = zlib.compressobj(wbits=-15)
    parts = [compressor.compress(chunk) for _ in range(size // len(chunk))]
    parts.append(compressor.flush(zlib.Z_SYNC_FLUSH))
    data = b"".join(parts)
    assert data.endswith(b"\x00\x00\xff\xff")
    return data[:-4]


async def test_compressed_message_round_trip() -> None:
    payload = b"hello " * 1000
    with trio.fail_after(TIMEOUT):
        async with serve() as wss, raw_client(wss.port, extra=DEFLATE) as client:
            assert "permessage-deflate" in client.headers["sec-websocket-extensions"]
            compressor = zlib.compressobj(wbits=-15)
            data = compressor.compress(payload) + compressor.flush(zlib.Z_SYNC_FLUSH)
            await client.send(frame(OP_BINARY, data[:-4], rsv=0b100))
            got = await client.read_frame()
            assert got is not None
            first, opcode, body = got
            assert opcode == OP_BINARY
            if first & 0x40:  # the server compressed its answer
                body = zlib.decompressobj(wbits=-15).decompress(body + b"\x00\x00\xff\xff")
            assert body == payload


@pytest.mark.parametrize("fragmented", [False, True])
async def test_decompression_bomb_is_1009_with_bounded_memory(fragmented: bool) -> None:
    bomb = deflated(BOMB_SIZE)
    assert len(bomb) < BOMB_SIZE // 500
    if fragmented:
        half = len(bomb) // 2
        frames = [frame(OP_TEXT, bomb[:half], fin=False, rsv=0b100), frame(OP_CONT, bomb[half:])]
    else:
        frames = [frame(OP_BINARY, bomb, rsv=0b100)]
    recorder = Recorder()
    process = psutil.Process()
    gc.collect()
    before = process.memory_info().rss
    with trio.fail_after(TIMEOUT):
        async with serve(recorder) as wss, raw_client(wss.port, extra=DEFLATE) as client:
            for data in frames:
                try:
                    await client.send(data)
                except trio.BrokenResourceError:
                    break  # the server stopped reading: fine
            code, reason = await client.read_close()
            assert code == 1009
            assert "larger than" in reason
            peak = process.memory_info().rss
            await client.send(close_frame(1009))
            await client.finish()
            conn = await recorder.last_terminated()
    assert peak - before < 50 * 1024 * 1024, f"RSS grew by {(peak - before) >> 20} MiB"
    assert "1009" in conn.of("error")[0].errors[0].message
    assert conn.events[-1].code == 1009
