"""The socket transport's own behaviour, over loopback sockets.

How it takes the socket from trio's ``SocketStream`` (trio's stdlib socket, or a new one on
the detached descriptor when trio keeps none), ``receive_nowait``, the read that never
waits (the fast path of lent reading), and closing with and without a task waiting.
"""

from __future__ import annotations

import fcntl
import socket
import sys
import termios
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import trio
import trio.testing

from trionet._sockets import RETRY_MISSES, RETRY_PROBE, SocketTransport, open_transport
from trionet._transport import LARGE_RECEIVE_SIZE, RECEIVE_SIZE, TransportError

HOST = "127.0.0.1"


@pytest.fixture
async def stream_pair() -> AsyncIterator[tuple[trio.SocketStream, trio.SocketStream]]:
    """A connected (server side, client side) pair of trio socket streams."""
    listener = (await trio.open_tcp_listeners(0, host=HOST))[0]
    async with listener:
        port = listener.socket.getsockname()[1]
        client = await trio.open_tcp_stream(HOST, port)
        server = await listener.accept()
        async with client:
            yield server, client


class _NoInnerSocket:
    """A trio socket as another trio version might make it: no ``_sock`` to take."""

    def __init__(self, trio_socket: Any) -> None:
        self._wrapped = trio_socket
        self.family, self.type, self.proto = trio_socket.family, trio_socket.type, trio_socket.proto

    def detach(self) -> int:
        return int(self._wrapped.detach())


async def test_takes_trios_socket_without_a_copy(
    stream_pair: tuple[trio.SocketStream, trio.SocketStream],
) -> None:
    server, client = stream_pair
    inner = server.socket._sock  # type: ignore[attr-defined]
    transport = open_transport(server)
    assert isinstance(transport, SocketTransport)
    try:
        assert transport._sock is inner
        await client.send_all(b"ping")
        with trio.fail_after(5):
            assert await transport.receive() == b"ping"
    finally:
        await transport.aclose()


async def test_detaches_when_trio_keeps_no_socket(
    stream_pair: tuple[trio.SocketStream, trio.SocketStream],
) -> None:
    server, client = stream_pair
    fd = server.socket.fileno()

    class Stream:
        socket = _NoInnerSocket(server.socket)

    transport = SocketTransport.from_stream(Stream())  # type: ignore[arg-type]
    try:
        assert transport._sock.fileno() == fd
        assert transport._sock.gettimeout() == 0.0
        await client.send_all(b"pong")
        with trio.fail_after(5):
            assert await transport.receive() == b"pong"
        await transport.send(b"back")
        with trio.fail_after(5):
            assert await client.receive_some(8) == b"back"
    finally:
        await transport.aclose()


async def test_receive_nowait_reads_only_what_is_there() -> None:
    # The lent read's fast path: no wait, None when empty, b"" (and eof_received) at EOF.
    with trio.fail_after(10):
        listener = (await trio.open_tcp_listeners(0, host=HOST))[0]
        async with listener:
            port = listener.socket.getsockname()[1]
            client = await trio.open_tcp_stream(HOST, port)
            transport = open_transport(await listener.accept())
            try:
                assert transport.can_lend
                assert transport.receive_nowait() is None
                await client.send_all(b"ready")
                got = b""
                while len(got) < 5:
                    await trio.lowlevel.wait_readable(transport._sock)  # type: ignore[attr-defined]
                    got += transport.receive_nowait() or b""
                assert got == b"ready"
                await client.aclose()
                await trio.lowlevel.wait_readable(transport._sock)  # type: ignore[attr-defined]
                assert transport.receive_nowait() == b""
                assert transport.eof_received
            finally:
                await transport.aclose()


async def test_aclose_wakes_a_task_waiting_on_the_socket(
    stream_pair: tuple[trio.SocketStream, trio.SocketStream],
) -> None:
    server, _client = stream_pair
    transport = open_transport(server)
    failures: list[TransportError] = []

    async def read() -> None:
        try:
            await transport.receive()
        except TransportError as exc:
            failures.append(exc)

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(read)
            await trio.testing.wait_all_tasks_blocked()
            await transport.aclose()
    assert len(failures) == 1


async def test_descriptors_closed_without_waiters_can_be_waited_on_again() -> None:
    # aclose tells trio nothing when no task waits (see SocketTransport.aclose): a socket
    # that gets the same descriptor number next must still be waited on correctly, after
    # the old one was waited on (registered with epoll) and after it never was.
    async def send_when_blocked(stream: trio.SocketStream, data: bytes) -> None:
        await trio.testing.wait_all_tasks_blocked()
        await stream.send_all(data)

    with trio.fail_after(10):
        listener = (await trio.open_tcp_listeners(0, host=HOST))[0]
        async with listener:
            port = listener.socket.getsockname()[1]
            for waited_before in (True, False, True):
                client = await trio.open_tcp_stream(HOST, port)
                again = await trio.open_tcp_stream(HOST, port)
                async with client, again:
                    transport = open_transport(await listener.accept())
                    fd = transport._sock.fileno()  # type: ignore[attr-defined]
                    if waited_before:
                        async with trio.open_nursery() as nursery:
                            nursery.start_soon(send_when_blocked, client, b"x")
                            assert await transport.receive() == b"x"
                    await transport.aclose()
                    reused = open_transport(await listener.accept())  # the lowest free fd
                    try:
                        assert reused._sock.fileno() == fd  # type: ignore[attr-defined]
                        async with trio.open_nursery() as nursery:
                            nursery.start_soon(send_when_blocked, again, b"late")
                            assert await reused.receive() == b"late"
                    finally:
                        await reused.aclose()


async def _buffered_reader(amount: int, limit: int) -> tuple[Any, socket.socket]:
    """A transport whose socket has ``amount`` bytes waiting, and the writing peer."""
    with socket.create_server((HOST, 0)) as listening:
        writer = socket.create_connection(listening.getsockname())
        reader, _ = listening.accept()
    reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    reader.setblocking(False)
    writer.setblocking(False)
    transport = SocketTransport(reader, no_delay=True)
    transport.receive_limit = limit
    await _fill(transport, writer, amount)
    return transport, writer


async def _fill(transport: SocketTransport, writer: socket.socket, amount: int) -> None:
    """Write ``amount`` bytes and wait until the reader's socket holds them all."""
    writer.sendall(b"x" * amount)
    while True:
        waiting = bytearray(4)
        fcntl.ioctl(transport._sock, termios.FIONREAD, waiting)
        if int.from_bytes(waiting, sys.byteorder) >= amount:
            return
        await trio.lowlevel.wait_readable(transport._sock)


@pytest.mark.parametrize("through", ["receive", "receive_nowait"])
async def test_reads_grow_to_the_limit_while_they_come_back_full(through: str) -> None:
    with trio.fail_after(10):
        transport, writer = await _buffered_reader(1 << 20, LARGE_RECEIVE_SIZE)
        try:

            async def read() -> int:
                if through == "receive":
                    return len(await transport.receive())
                data = transport.receive_nowait()
                assert data is not None
                return len(data)

            # 64 KiB first; each full read lets the next take 256 KiB; the short last one
            # (what is left of the MiB) sends the next read back to 64 KiB.
            sizes = [await read() for _ in range(5)]
            big = LARGE_RECEIVE_SIZE
            assert sizes == [RECEIVE_SIZE, big, big, big, (1 << 20) - RECEIVE_SIZE - 3 * big]
            await _fill(transport, writer, 1 << 19)
            assert await read() == RECEIVE_SIZE
        finally:
            writer.close()
            await transport.aclose()


async def test_reads_stay_at_receive_size_by_default() -> None:
    with trio.fail_after(10):
        transport, writer = await _buffered_reader(1 << 19, RECEIVE_SIZE)
        try:
            sizes = [len(await transport.receive()) for _ in range(8)]
            assert sizes == [RECEIVE_SIZE] * 8  # TCP connections: data events of 64 KiB at most
        finally:
            writer.close()
            await transport.aclose()


class _CountingSocket:
    """A socket's stand-in that counts ``recv`` calls (trio waits on its descriptor)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.recvs = 0
        self.pretend_empty = 0  # the next calls that find nothing, whatever is there

    def recv(self, size: int) -> bytes:
        self.recvs += 1
        if self.pretend_empty:
            self.pretend_empty -= 1
            raise BlockingIOError
        return self.sock.recv(size)

    def fileno(self) -> int:
        return self.sock.fileno()


@pytest.fixture
def counted() -> Iterator[tuple[SocketTransport, _CountingSocket, socket.socket]]:
    """A transport on a counting socket, the counter, and the peer's socket."""
    left, right = socket.socketpair()
    with left, right:
        left.setblocking(False)
        counting = _CountingSocket(left)
        yield SocketTransport(counting, no_delay=True), counting, right  # type: ignore[arg-type]


async def test_a_second_look_is_left_out_while_it_keeps_missing(
    counted: tuple[SocketTransport, _CountingSocket, socket.socket],
) -> None:
    # A peer that sends only once the receiver waits: every second look misses.  After
    # RETRY_MISSES misses the receive waits at once (2 recv calls instead of 3), but for
    # a probe every RETRY_PROBE-th time; a second look that finds data starts over.
    transport, counting, right = counted
    calls = []
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            for _ in range(2 * RETRY_PROBE):
                before = counting.recvs
                nursery.start_soon(transport.receive)
                await trio.testing.wait_all_tasks_blocked()
                right.send(b"x")
                await trio.testing.wait_all_tasks_blocked()
                calls.append(counting.recvs - before)
            # Data that is there by the second look (a probe, at this count): the
            # second look found it, and the misses start over.
            right.send(b"y")
            counting.pretend_empty = 1
            before = counting.recvs
            nursery.start_soon(transport.receive)
            await trio.testing.wait_all_tasks_blocked()
    skipped = [n == 2 for n in calls]
    assert calls[:RETRY_MISSES] == [3] * RETRY_MISSES
    probes = {RETRY_PROBE, 2 * RETRY_PROBE}  # misses counted before each receive
    for misses, n in enumerate(calls[RETRY_MISSES:], start=RETRY_MISSES):
        assert n == (3 if misses in probes else 2), (misses, calls)
    assert any(skipped)
    assert counting.recvs - before == 2
    assert transport._misses == 0


async def test_receive_ready_reads_what_is_there_or_says_none() -> None:
    left, right = socket.socketpair()
    with left, right:
        left.setblocking(False)
        transport = SocketTransport(left, no_delay=True)
        with trio.fail_after(10):
            assert await transport.receive_ready() is None
            right.send(b"now")
            await trio.lowlevel.wait_readable(left)
            assert await transport.receive_ready() == b"now"
            right.shutdown(socket.SHUT_WR)
            await trio.lowlevel.wait_readable(left)
            assert await transport.receive_ready() == b""
            assert transport.eof_received


def test_the_budget_counts_the_largest_websocket_read() -> None:
    from trionet._wsoptions import _RECEIVE_CHUNK  # sans-I/O: it cannot import the transport

    assert _RECEIVE_CHUNK == LARGE_RECEIVE_SIZE


@pytest.mark.parametrize("misses", [RETRY_MISSES, RETRY_MISSES + 1, 2 * RETRY_PROBE - 1])
async def test_a_quiet_connection_flushes_before_its_receive_without_a_pass(misses: int) -> None:
    # Once the second look is left out, the receive after a flush waits at once: the
    # flush's own pass of the scheduler would only delay that wait.
    left, right = socket.socketpair()
    with left, right:
        left.setblocking(False)
        transport = SocketTransport(left, no_delay=True)
        transport._misses = misses
        assert transport.waits_at_once()
        transport.pending += b"answer"
        with trio.fail_after(10), trio.testing.assert_no_checkpoints():
            await transport.flush_before_receive()
        assert not transport.pending
        assert right.recv(64) == b"answer"


@pytest.mark.parametrize("misses", [0, RETRY_MISSES - 1, RETRY_PROBE, 2 * RETRY_PROBE])
async def test_flush_before_receive_keeps_its_pass_while_the_second_look_pays(
    misses: int,
) -> None:
    # Before RETRY_MISSES misses, and at every probe, the pass stays: it gives the peer
    # time to answer before the receive looks.
    left, right = socket.socketpair()
    with left, right:
        left.setblocking(False)
        transport = SocketTransport(left, no_delay=True)
        transport._misses = misses
        assert not transport.waits_at_once()
        transport.pending += b"answer"
        with trio.fail_after(10), trio.testing.assert_checkpoints():
            await transport.flush_before_receive()
        assert right.recv(64) == b"answer"


async def test_a_quiet_flush_the_socket_cannot_take_at_once_still_sends_everything() -> None:
    # The socket's buffer is full: flush_nowait writes part (or nothing), and the rest
    # goes out as flush() sends it, waiting for room, in order.
    left, right = socket.socketpair()
    with left, right:
        left.setblocking(False)
        right.setblocking(False)
        transport = SocketTransport(left, no_delay=True)
        transport._misses = RETRY_MISSES + 1
        data = bytes(range(256)) * 8192  # 2 MiB: more than a socketpair buffers
        transport.pending += data
        received = bytearray()

        async def drain() -> None:
            while len(received) < len(data):
                await trio.lowlevel.wait_readable(right)
                received.extend(right.recv(1 << 16))

        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(drain)
                await transport.flush_before_receive()
        assert not transport.pending
        assert received == data
