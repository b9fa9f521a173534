"""The socket transport's own behaviour, over loopback sockets.

How it takes the socket from trio's ``SocketStream`` (trio's stdlib socket, or a new one on
the detached descriptor when trio keeps none), ``receive_nowait``, the read that never
waits (the fast path of lent reading), and closing with and without a task waiting.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio

from trionet._sockets import SocketTransport, open_transport
from trionet._transport import TransportError

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
