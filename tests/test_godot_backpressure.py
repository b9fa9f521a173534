"""StreamPeerTCP's bounded receive buffer and stream faults, over memory streams.

Peers are adopted onto in-memory streams exactly as TCPServer adopts accepted sockets, so
these tests are deterministic (no sockets, no timing).
"""

from __future__ import annotations

import pytest
import trio
import trio.testing

from trionet import Error, StreamPeerTCP
from trionet._godot_link import Scope
from trionet.testing import memory_stream_pair

Status = StreamPeerTCP.Status


async def test_full_buffer_stops_the_reader_and_the_sender_waits() -> None:
    with trio.fail_after(5):
        ours, theirs = memory_stream_pair(capacity=1024)
        async with trio.open_nursery() as nursery:
            scope = Scope(nursery)
            peer = StreamPeerTCP._adopt(scope, ours, buffer_size=4096)
            sent = trio.Event()

            async def flood() -> None:
                await theirs.send_all(b"x" * 20_000)
                sent.set()

            nursery.start_soon(flood)
            await trio.testing.wait_all_tasks_blocked()
            # The reader stopped at the limit (one chunk of overshoot at most) and the
            # sender waits on the memory stream's own small buffer: nothing grew unbounded.
            assert 4096 <= peer.get_available_bytes() <= 4096 + 1024
            assert not sent.is_set()
            error, data = await peer.get_data(20_000)  # draining lets the rest through
            assert (error, len(data)) == (Error.OK, 20_000)
            await sent.wait()
            scope.close()


async def test_cancelled_get_data_keeps_the_bytes_in_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(5):
        ours, theirs = memory_stream_pair()
        async with trio.open_nursery() as nursery:
            scope = Scope(nursery)
            peer = StreamPeerTCP._adopt(scope, ours, buffer_size=4096)
            await theirs.send_all(b"abc")
            with trio.move_on_after(1):  # virtual time: instant
                await peer.get_data(10)
            assert peer.get_available_bytes() == 3
            await theirs.send_all(b"defghij")
            assert await peer.get_data(10) == (Error.OK, b"abcdefghij")
            scope.close()


async def test_reset_mid_read_is_a_connection_error() -> None:
    with trio.fail_after(5):
        ours, theirs = memory_stream_pair()
        async with trio.open_nursery() as nursery:
            scope = Scope(nursery)
            peer = StreamPeerTCP._adopt(scope, ours, buffer_size=4096)
            await theirs.send_all(b"ab")

            async def reset_later() -> None:
                await trio.testing.wait_all_tasks_blocked()
                theirs.reset()

            nursery.start_soon(reset_later)
            assert await peer.get_data(4) == (Error.ERR_CONNECTION_ERROR, b"ab")
            assert peer.get_status() == Status.STATUS_ERROR
            scope.close()


async def test_send_to_a_reset_peer_is_a_connection_error() -> None:
    with trio.fail_after(5):
        ours, theirs = memory_stream_pair()
        async with trio.open_nursery() as nursery:
            scope = Scope(nursery)
            peer = StreamPeerTCP._adopt(scope, ours, buffer_size=4096)
            theirs.reset()
            await trio.testing.wait_all_tasks_blocked()
            assert await peer.put_data(b"x") == Error.ERR_CONNECTION_ERROR
            assert peer.get_status() == Status.STATUS_ERROR
            scope.close()


async def test_hostile_var_length_fails_the_peer() -> None:
    with trio.fail_after(5):
        ours, theirs = memory_stream_pair()
        async with trio.open_nursery() as nursery:
            scope = Scope(nursery)
            peer = StreamPeerTCP._adopt(scope, ours, buffer_size=4096)
            await theirs.send_all(b"\x00\x00\x00\x80")  # claims 2 GiB
            assert await peer.get_var() is None
            assert peer.get_status() == Status.STATUS_ERROR
            assert peer.get_available_bytes() == 0
            scope.close()


@pytest.mark.parametrize("chunk", [1, 3, 7])
async def test_fragmented_stream_gives_the_same_values(chunk: int) -> None:
    with trio.fail_after(5):
        ours, theirs = memory_stream_pair(seed=chunk)
        ours.max_chunk = chunk
        async with trio.open_nursery() as nursery:
            scope = Scope(nursery)
            peer = StreamPeerTCP._adopt(scope, ours, buffer_size=4096)
            await theirs.send_all(
                b"\x05\x00\x00\x00hello"
                + b"\x0c\x00\x00\x00\x04\x00\x00\x00\x02\x00\x00\x00hi\x00\x00"
            )
            assert await peer.get_string() == "hello"
            assert await peer.get_var() == "hi"
            scope.close()
