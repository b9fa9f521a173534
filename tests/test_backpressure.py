"""A peer flooding a slow consumer: memory stays bounded, every byte arrives in order."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import pytest
import trio

from trionet import TCPConnection, TCPEvent, TCPListener

HOST = "127.0.0.1"
TOTAL = 200 * 1024 * 1024
BLOCK = 1024 * 1024

# The flooding peer: a separate process writing TOTAL bytes of a known pattern as fast as
# the kernel lets it, then closing.  Block i is 1 MiB of the byte (i % 251).
FLOODER = f"""
import socket, sys
sock = socket.create_connection(("{HOST}", int(sys.argv[1])))
for i in range({TOTAL // BLOCK}):
    sock.sendall(bytes([i % 251]) * {BLOCK})
sock.close()
"""


def expected_digest() -> bytes:
    digest = hashlib.sha256()
    for i in range(TOTAL // BLOCK):
        digest.update(bytes([i % 251]) * BLOCK)
    return digest.digest()


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096


class SlowConsumer:
    """Handles each chunk slowly: hashes it and yields to the scheduler several times."""

    def __init__(self) -> None:
        self.digest = hashlib.sha256()
        self.size = 0
        self.peak_rss = 0
        self.done = trio.Event()

    async def consume(self, event: TCPEvent) -> None:
        assert event.data is not None
        self.digest.update(event.data)
        self.size += len(event.data)
        for _ in range(4):
            await trio.lowlevel.checkpoint()
        if self.size % (4 * BLOCK) < len(event.data):
            self.peak_rss = max(self.peak_rss, rss_bytes())


@pytest.mark.slow
@pytest.mark.parametrize("style", ["handler", "events"])
async def test_flood_keeps_memory_bounded(style: str) -> None:
    consumer = SlowConsumer()

    class Handler:
        async def on_data(self, conn: TCPConnection, event: TCPEvent) -> None:
            await consumer.consume(event)

        def on_terminate(self, conn: TCPConnection, event: TCPEvent) -> None:
            consumer.done.set()

    class Accept:
        def on_connection(self, listener: TCPListener, event: TCPEvent) -> Handler:
            return Handler()

    async def serve(conn: TCPConnection) -> None:
        async for event in conn.events():
            if event.type == "data":
                await consumer.consume(event)
        consumer.done.set()

    expected = expected_digest()
    handler: object = Accept() if style == "handler" else serve
    baseline = rss_bytes()
    with trio.fail_after(120):
        async with TCPListener.new(0, handler, host=HOST) as listener:
            flooder = await trio.lowlevel.open_process(
                [sys.executable, "-c", FLOODER, str(listener.port)], stdin=subprocess.DEVNULL
            )
            try:
                await consumer.done.wait()
            finally:
                with trio.CancelScope(shield=True):
                    await flooder.wait()
    growth = consumer.peak_rss - baseline
    print(f"{style}: peak RSS growth {growth / 2**20:.2f} MiB over {TOTAL / 2**20:.0f} MiB")
    assert consumer.size == TOTAL
    assert consumer.digest.digest() == expected
    # Bounded by the event channel (16 x 64 KiB) and allocator slack, not by the flood.
    assert growth < 8 * 1024 * 1024, f"memory grew by {growth / 2**20:.1f} MiB"
    assert flooder.returncode == 0
