"""trionet.testing's own doubles: memory streams, the pair and listener harness, the recorder.

Other tests trust these doubles to behave like TCP (order, bounded buffers, half-close,
reset) and to inject faults exactly as documented; this file checks that they do.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Awaitable, Callable

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from trionet import TCPConnection, TCPEvent
from trionet.testing import (
    EventRecorder,
    MemoryTCPStream,
    memory_stream_pair,
    open_connection_pair,
    open_memory_listener,
)


def run_with_mock_clock(fn: Callable[[], Awaitable[None]]) -> None:
    """Run ``fn`` in a fresh trio run on an autojumping MockClock (for hypothesis tests)."""
    trio.run(fn, clock=trio.testing.MockClock(autojump_threshold=0))


async def read_until_eof(stream: MemoryTCPStream, max_bytes: int | None = None) -> bytes:
    got = bytearray()
    while chunk := await stream.receive_some(max_bytes):
        got += chunk
    return bytes(got)


async def assert_blocks(fn: Callable[[], Awaitable[object]], seconds: float = 5.0) -> None:
    """``fn()`` does not complete within ``seconds`` of (virtual) time."""
    with trio.move_on_after(seconds) as scope:
        await fn()
    assert scope.cancelled_caught, f"{fn} completed but should have blocked"


# -- order and fragmentation -------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(
    data=st.binary(max_size=3000),
    cuts=st.lists(st.integers(min_value=0, max_value=3000), max_size=12),
    capacity=st.integers(min_value=1, max_value=512),
    max_chunk=st.one_of(st.none(), st.integers(min_value=1, max_value=300)),
    seed=st.one_of(st.none(), st.integers(min_value=0, max_value=2**32)),
    max_bytes=st.one_of(st.none(), st.integers(min_value=1, max_value=700)),
)
def test_any_split_arrives_as_the_same_bytes(
    data: bytes,
    cuts: list[int],
    capacity: int,
    max_chunk: int | None,
    seed: int | None,
    max_bytes: int | None,
) -> None:
    """However the sender splits and the receiver chunks, the bytes and order are kept."""
    bounds = sorted({0, len(data), *(c for c in cuts if c <= len(data))})
    pieces = [data[i:j] for i, j in itertools.pairwise(bounds)]
    result: dict[str, object] = {}

    async def main() -> None:
        a, b = memory_stream_pair(capacity=capacity, seed=seed)
        b.max_chunk = max_chunk
        with trio.fail_after(60):
            async with trio.open_nursery() as nursery:

                async def sender() -> None:
                    for piece in pieces:
                        await a.send_all(piece)
                    await a.send_eof()

                nursery.start_soon(sender)
                chunks = []
                while chunk := await b.receive_some(max_bytes):
                    if max_bytes is not None:
                        assert len(chunk) <= max_bytes
                    if max_chunk is not None:
                        assert len(chunk) <= max_chunk
                    assert len(chunk) <= capacity  # a chunk never exceeds what the pipe holds
                    chunks.append(chunk)
                result["received"] = b"".join(chunks)
                result["counters"] = (a.bytes_sent, b.bytes_received)

    run_with_mock_clock(main)
    assert result["received"] == data
    assert result["counters"] == (len(data), len(data))


async def test_max_chunk_without_rng_is_exact_and_with_seed_is_repeatable() -> None:
    with trio.fail_after(10):
        a, b = memory_stream_pair()  # no seed: no rng
        b.max_chunk = 7
        await a.send_all(bytes(30))
        sizes = [len(await b.receive_some()) for _ in range(4)]
        assert sizes == [7, 7, 7, 7]

        async def sizes_for(seed: int) -> list[int]:
            x, y = memory_stream_pair(seed=seed)
            y.max_chunk = 50
            await x.send_all(bytes(2000))
            await x.send_eof()
            out = []
            while chunk := await y.receive_some():
                out.append(len(chunk))
            return out

        first, again, other = await sizes_for(3), await sizes_for(3), await sizes_for(4)
        assert first == again  # same seed, same fragmentation
        assert first != other
        assert sum(first) == 2000
        assert all(1 <= size <= 50 for size in first)
        assert len(set(first)) > 1  # really random sizes, not a fixed cap


# -- bounded buffers and a stalled reader -------------------------------------------------


async def test_bounded_capacity_blocks_the_sender_until_the_reader_reads(
    autojump_clock: trio.testing.MockClock,
) -> None:
    a, b = memory_stream_pair(capacity=10)
    await a.send_all(b"0123456789")  # exactly fills the pipe: returns
    await assert_blocks(lambda: a.send_all(b"x"))
    await assert_blocks(a.wait_send_all_might_not_block)
    done = trio.Event()

    async def sender() -> None:
        await a.send_all(b"abcdefghijKLMNO")
        done.set()

    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(sender)
            await trio.testing.wait_all_tasks_blocked()
            assert not done.is_set()
            # Reading frees room and lets the sender through, a pipeful at a time.
            got = bytearray()
            while len(got) < 25:
                chunk = await b.receive_some()
                assert len(chunk) <= 10
                got += chunk
                await trio.testing.wait_all_tasks_blocked()
            assert done.is_set()
    # The cancelled send_all(b"x") found no room, so it wrote nothing.
    assert bytes(got) == b"0123456789" + b"abcdefghijKLMNO"
    await a.wait_send_all_might_not_block()  # empty pipe: returns at once


async def test_stalled_reader_stops_reading_until_resumed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    a, b = memory_stream_pair(capacity=100)
    b.stall()
    await a.send_all(b"hello")
    await assert_blocks(b.receive_some)  # data is there, but this end does not read
    await a.send_all(bytes(95))
    await assert_blocks(lambda: a.send_all(b"!"))  # full: the sender waits as TCP would
    b.resume()
    with trio.fail_after(5):
        assert (await b.receive_some(5)) == b"hello"
        assert b.bytes_received == 5


async def test_stall_also_holds_a_receive_already_waiting(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(10):
        a, b = memory_stream_pair()
        got: list[bytes] = []
        async with trio.open_nursery() as nursery:
            nursery.start_soon(lambda: _append(got, b.receive_some()))
            await trio.testing.wait_all_tasks_blocked()
            b.stall()
            await a.send_all(b"arrives while stalled")
            await trio.sleep(5)
            assert got == []  # fails: [b"arrives while stalled"]
            b.resume()
        assert got == [b"arrives while stalled"]


async def _append(out: list[bytes], receive: Awaitable[bytes]) -> None:
    out.append(await receive)


# -- half-close, reset, close -----------------------------------------------------------


async def test_send_eof_gives_the_peer_eof_after_the_data() -> None:
    a, b = memory_stream_pair()
    await a.send_all(b"last words")
    await a.send_eof()
    with trio.fail_after(5):
        assert await read_until_eof(b) == b"last words"
        assert await b.receive_some() == b""  # and again: EOF is sticky
    with pytest.raises(trio.ClosedResourceError):
        await a.send_all(b"more")
    # Half-close: the other direction still works.
    await b.send_all(b"reply")
    await b.send_eof()
    with trio.fail_after(5):
        assert await read_until_eof(a) == b"reply"


async def test_send_eof_is_idempotent() -> None:
    with trio.fail_after(10):
        a, b = memory_stream_pair()
        await a.send_eof()
        await a.send_eof()
        assert await b.receive_some() == b""
        await b.aclose()  # the peer is gone entirely: a repeated FIN is still no error
        await a.send_eof()


@pytest.mark.parametrize("which", ["a", "b"])
async def test_reset_makes_both_ends_raise_broken_resource(which: str) -> None:
    with trio.fail_after(10):
        a, b = memory_stream_pair()
        await a.send_all(b"unread")
        (a if which == "a" else b).reset()
        for stream in (a, b):
            with pytest.raises(trio.BrokenResourceError):
                await stream.receive_some()
            with pytest.raises(trio.BrokenResourceError):
                await stream.send_all(b"x")
            with pytest.raises(trio.BrokenResourceError):
                await stream.send_eof()


async def test_reset_wakes_blocked_readers_and_writers(
    autojump_clock: trio.testing.MockClock,
) -> None:
    a, b = memory_stream_pair(capacity=4)
    failures: list[str] = []

    async def expect_broken(name: str, fn: Callable[[], Awaitable[object]]) -> None:
        with pytest.raises(trio.BrokenResourceError):
            await fn()
        failures.append(name)

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(expect_broken, "reader", a.receive_some)
            nursery.start_soon(expect_broken, "writer", lambda: a.send_all(bytes(100)))
            await trio.testing.wait_all_tasks_blocked()
            assert failures == []
            b.reset()
    assert sorted(failures) == ["reader", "writer"]


async def test_aclose_gives_eof_and_unread_data_gives_reset() -> None:
    with trio.fail_after(10):
        a, b = memory_stream_pair()
        await a.aclose()
        await a.aclose()  # idempotent
        assert await b.receive_some() == b""
        with pytest.raises(trio.ClosedResourceError):
            await a.send_all(b"x")
        with pytest.raises(trio.ClosedResourceError):
            await a.receive_some()
        # Closing with unread incoming data is what makes a real socket send RST.
        c, d = memory_stream_pair()
        await d.send_all(b"never read")
        await c.aclose()
        with pytest.raises(trio.BrokenResourceError):
            await d.receive_some()
        # Without unread data the peer sees EOF, and its later sends are refused.
        e, f = memory_stream_pair()
        await e.aclose()
        assert await f.receive_some() == b""
        with pytest.raises(trio.BrokenResourceError):
            await f.send_all(b"to a closed socket")


# -- vanish ------------------------------------------------------------------------------


async def test_vanish_swallows_sends_and_delivers_nothing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    a, b = memory_stream_pair(capacity=16)
    await a.send_all(b"before")
    b.vanish()  # either end: the link is gone
    # Sends "succeed" (like a socket whose peer dropped off the network) ...
    await a.send_all(bytes(1000))
    assert a.bytes_sent == 6 + 1000
    await a.send_eof()
    # ... but nothing arrives: not the data sent before, not the new data, not the FIN.
    await assert_blocks(b.receive_some)
    await assert_blocks(a.receive_some)
    await b.send_all(b"into the void")
    await assert_blocks(a.receive_some)


async def test_vanish_releases_a_sender_blocked_on_a_full_buffer(
    autojump_clock: trio.testing.MockClock,
) -> None:
    a, b = memory_stream_pair(capacity=16)
    done = trio.Event()

    async def sender() -> None:
        await a.send_all(bytes(100))  # blocks once 16 bytes are buffered
        done.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(sender)
        await trio.testing.wait_all_tasks_blocked()
        assert not done.is_set()
        b.vanish()
        with trio.move_on_after(5):
            await done.wait()
        nursery.cancel_scope.cancel()
    assert done.is_set()  # fails: still parked


async def test_vanish_hides_a_later_close(autojump_clock: trio.testing.MockClock) -> None:
    a, b = memory_stream_pair()
    a.vanish()
    await a.aclose()
    await b.send_all(b"still swallowed")  # fails: BrokenResourceError
    await b.send_eof()
    await assert_blocks(b.receive_some)


# -- delays follow the trio clock -------------------------------------------------------


async def test_delays_respect_the_mock_clock(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(60):
        a, b = memory_stream_pair()
        a.send_delay = 2.5
        b.receive_delay = 1.5
        start = trio.current_time()
        await a.send_all(b"x")
        assert trio.current_time() - start == pytest.approx(2.5)
        start = trio.current_time()
        assert await b.receive_some() == b"x"
        assert trio.current_time() - start == pytest.approx(1.5)
        # A receive waits its delay, then for data.
        start = trio.current_time()

        async def late_send() -> None:
            await trio.sleep(10)
            a.send_delay = 0.0
            await a.send_all(b"y")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(late_send)
            assert await b.receive_some() == b"y"
        assert trio.current_time() - start == pytest.approx(10)


async def test_delays_are_cancellable(autojump_clock: trio.testing.MockClock) -> None:
    a, b = memory_stream_pair()
    a.send_delay = 100
    with trio.move_on_after(1):
        await a.send_all(b"x")
    b.receive_delay = 0
    await assert_blocks(b.receive_some)  # the cancelled send wrote nothing
    assert a.bytes_sent == 0


# -- construction ------------------------------------------------------------------------


def test_memory_stream_pair_arguments() -> None:
    with pytest.raises(ValueError, match="capacity"):
        memory_stream_pair(capacity=0)
    with pytest.raises(TypeError, match="capacity"):
        memory_stream_pair(capacity=True)
    a, b = memory_stream_pair(addresses=(("10.0.0.1", 1111), ("10.0.0.2", 2222)))
    assert a.remote_address == ("10.0.0.2", 2222)
    assert b.remote_address == ("10.0.0.1", 1111)
    c, d = memory_stream_pair()
    assert c.remote_address != d.remote_address
    assert isinstance(c, trio.abc.HalfCloseableStream)


# -- the harness -------------------------------------------------------------------------


async def test_event_recorder_records_and_echoes(autojump_clock: trio.testing.MockClock) -> None:
    client, server = EventRecorder(), EventRecorder(echo=True)
    with trio.fail_after(30):
        async with open_connection_pair(client, server, seed=5) as pair:
            pair.b_stream.max_chunk = 3  # several data events for one send
            await pair.a.send(b"hello world")
            assert await server.wait_for_bytes(11) == b"hello world"
            assert await client.wait_for_bytes(11) == b"hello world"
            third = await server.wait_for("data", count=3)
            assert third.data is not None
            assert len(third.data) <= 3
            await pair.a.shutdown()
            await client.wait_for("terminate")
            await server.wait_for("terminate")
    assert server.types[0] == "connection"
    assert server.types[-2:] == ["close", "terminate"]
    assert set(server.types[1:-2]) == {"data"}
    assert server.types.count("data") >= 4
    assert client.types == [
        "connection",
        *["data"] * client.types.count("data"),
        "close",
        "terminate",
    ]
    assert all(isinstance(event, TCPEvent) for event in server.events)
    # The events name the peer: each side's stream reports the other's address.
    assert (server.events[0].ip, server.events[0].port) == pair.b_stream.remote_address
    assert (client.events[0].ip, client.events[0].port) == pair.a_stream.remote_address


async def test_connection_pair_close_timeout_and_capacity_are_passed_on(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with pytest.raises(ValueError, match="close_timeout"):
        async with open_connection_pair(close_timeout=0):
            pass  # pragma: no cover
    with trio.fail_after(30):
        async with open_connection_pair(EventRecorder(), None, capacity=8, close_timeout=2) as pair:
            await pair.a.send(bytes(100))
            sizes = []
            async for event in pair.b.events():
                if event.type == "data":
                    assert event.data is not None
                    sizes.append(len(event.data))
                    if sum(sizes) == 100:
                        break
            assert max(sizes) <= 8  # the pipe never held more than its capacity
            pair.a_stream.vanish()
            start = trio.current_time()
            pair.b.terminate()
            pair.a.terminate()
            assert await pair.a.wait(10)
            assert await pair.b.wait(10)
            # Nothing answers over a vanished link: each side gives up after close_timeout.
            assert trio.current_time() - start == pytest.approx(2, abs=0.01)


async def test_memory_listener_accepts_and_refuses_after_terminate(
    autojump_clock: trio.testing.MockClock,
) -> None:
    accepted: list[TCPConnection] = []

    async def serve(conn: TCPConnection) -> None:
        accepted.append(conn)
        async for event in conn.events():
            if event.type == "data":
                assert event.data is not None
                await conn.send(event.data.upper())

    with trio.fail_after(30):
        async with open_memory_listener(serve, port=7777) as net:
            assert net.listener.port == 7777
            raw = await net.connect_stream(seed=1)
            assert raw.remote_address == ("127.0.0.1", 7777)
            await raw.send_all(b"shout")
            got = bytearray()
            while len(got) < 5:
                got += await raw.receive_some()
            assert bytes(got) == b"SHOUT"
            client = EventRecorder()
            async with net.connect(client) as conn:
                await conn.send(b"abc")
                assert await client.wait_for_bytes(3) == b"ABC"
            net.listener.terminate()
            await net.listener.wait()
            with pytest.raises(ConnectionRefusedError):
                await net.connect_stream()
    assert len(accepted) == 2
    assert all(conn.address == "127.0.0.1" for conn in accepted)
    assert accepted[0].port != accepted[1].port  # each client has its own (made-up) port
    assert all(conn.listener is net.listener for conn in accepted)
    assert client.types[0] == "connection"
    assert client.types[-1] == "terminate"


@pytest.mark.parametrize("seed", range(5))
async def test_echo_over_memory_streams_with_random_faultless_conditions(
    seed: int, autojump_clock: trio.testing.MockClock
) -> None:
    """Delays, fragmentation and small buffers together still give an exact echo."""
    rng = random.Random(seed)
    payload = rng.randbytes(rng.randint(1, 20_000))
    client, server = EventRecorder(), EventRecorder(echo=True)
    with trio.fail_after(120):
        async with open_connection_pair(
            client, server, seed=seed, capacity=rng.choice([64, 1000, 65536])
        ) as pair:
            for stream in (pair.a_stream, pair.b_stream):
                stream.max_chunk = rng.choice([None, 1000, 5000])
                stream.send_delay = rng.choice([0.0, 0.001])
                stream.receive_delay = rng.choice([0.0, 0.002])
            for start in range(0, len(payload), 7000):
                await pair.a.send(payload[start : start + 7000])
            await pair.a.shutdown()
            assert await pair.a.wait(100)
    assert server.received == payload
    assert client.received == payload
    assert client.types[-2:] == server.types[-2:] == ["close", "terminate"]
