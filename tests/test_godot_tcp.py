"""StreamPeerTCP over loopback: Godot's status machine, return codes and lifetimes."""

from __future__ import annotations

import socket
import struct
from collections.abc import AsyncIterator

import pytest
import trio

import trionet
from trionet import Error, StreamPeerTCP
from trionet._godot_link import Link

from .conftest import TaskCounter, open_fds

Status = StreamPeerTCP.Status


@pytest.fixture
async def listener() -> AsyncIterator[trio.SocketListener]:
    """A bare trio listener on 127.0.0.1 (an independent peer for the client)."""
    (server,) = await trio.open_tcp_listeners(0, host="127.0.0.1")
    try:
        yield server
    finally:
        await server.aclose()


def port_of(listener: trio.SocketListener) -> int:
    return int(listener.socket.getsockname()[1])


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def connected(peer: StreamPeerTCP) -> None:
    """Wait for the connect outcome and apply it, as a game's next frame would."""
    await peer.wait()
    assert peer.poll() == Error.OK
    assert peer.get_status() == Status.STATUS_CONNECTED


async def test_connect_is_immediate_and_poll_applies_the_outcome(
    listener: trio.SocketListener,
) -> None:
    with trio.fail_after(5):
        async with StreamPeerTCP() as peer:
            assert peer.get_status() == Status.STATUS_NONE
            assert peer.connect_to_host("127.0.0.1", port_of(listener)) == Error.OK
            assert peer.get_status() == StreamPeerTCP.STATUS_CONNECTING
            server = await listener.accept()
            await connected(peer)
            assert peer.get_connected_host() == "127.0.0.1"
            assert peer.get_connected_port() == port_of(listener)
            assert peer.get_local_port() == server.socket.getpeername()[1]
            await server.send_all(b"abc")
            await peer.wait()
            assert peer.get_available_bytes() == 3  # counted as it arrives, no poll needed
            assert peer.get_partial_data(2) == (Error.OK, b"ab")
            assert peer.get_partial_data(10) == (Error.OK, b"c")
            assert peer.get_partial_data(10) == (Error.OK, b"")
            assert await peer.put_u32(7) == Error.OK
            assert await server.receive_some(4) == b"\x07\x00\x00\x00"
            await server.aclose()


async def test_status_values_are_godots() -> None:
    assert [int(s) for s in Status] == [0, 1, 2, 3]
    assert StreamPeerTCP.STATUS_ERROR is Status.STATUS_ERROR


async def test_refused_connect_is_a_connection_error_at_poll() -> None:
    with trio.fail_after(5):
        async with StreamPeerTCP() as peer:
            assert peer.connect_to_host("127.0.0.1", free_port()) == Error.OK
            await peer.wait()
            assert peer.get_status() == Status.STATUS_CONNECTING  # not applied yet
            assert peer.poll() == Error.ERR_CONNECTION_ERROR
            assert peer.get_status() == Status.STATUS_ERROR
            assert peer.get_connected_host() == ""
            assert await peer.put_data(b"x") == Error.FAILED
            assert peer.connect_to_host("127.0.0.1", 1) == Error.ERR_ALREADY_IN_USE
            peer.disconnect_from_host()
            assert peer.get_status() == Status.STATUS_NONE


async def test_awaited_calls_wait_for_the_connect(listener: trio.SocketListener) -> None:
    with trio.fail_after(5):
        async with StreamPeerTCP() as peer, trio.open_nursery() as nursery:

            async def serve() -> None:
                server = await listener.accept()
                await server.send_all(struct.pack("<H", 513))
                assert await server.receive_some(2) == b"hi"
                await server.aclose()

            nursery.start_soon(serve)
            peer.connect_to_host("127.0.0.1", port_of(listener))
            assert await peer.put_data(b"hi") == Error.OK  # waits for the connect
            assert peer.get_status() == Status.STATUS_CONNECTED  # and applies it
            assert await peer.get_u16() == 513


async def test_refused_connect_seen_by_an_awaited_call() -> None:
    with trio.fail_after(5):
        async with StreamPeerTCP() as peer:
            peer.connect_to_host("127.0.0.1", free_port())
            assert await peer.get_data(4) == (Error.ERR_CONNECTION_ERROR, b"")
            assert peer.get_status() == Status.STATUS_ERROR


class FailingResolver(trio.abc.HostnameResolver):
    """Every name fails to resolve, without asking any DNS server."""

    async def getaddrinfo(self, host: object, port: object, *args: object) -> list[object]:
        await trio.lowlevel.checkpoint()
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    async def getnameinfo(self, sockaddr: object, flags: int) -> tuple[str, str]:
        raise NotImplementedError


async def test_unresolvable_name_is_cant_resolve_at_poll() -> None:
    with trio.fail_after(5):
        previous = trio.socket.set_custom_hostname_resolver(FailingResolver())
        try:
            async with StreamPeerTCP() as peer:
                assert peer.connect_to_host("no-such-host.invalid", 80) == Error.OK
                await peer.wait()
                assert peer.poll() == Error.ERR_CANT_RESOLVE
                assert peer.get_status() == Status.STATUS_ERROR
        finally:
            trio.socket.set_custom_hostname_resolver(previous)


async def test_bad_arguments_are_error_values() -> None:
    with trio.fail_after(5):
        async with StreamPeerTCP() as peer:
            assert peer.connect_to_host("127.0.0.1", 0) == Error.ERR_INVALID_PARAMETER
            assert peer.connect_to_host("127.0.0.1", 70000) == Error.ERR_INVALID_PARAMETER
            assert peer.connect_to_host("", 80) == Error.ERR_INVALID_PARAMETER
            assert peer.connect_to_host("127.0.0.1", "80") == Error.ERR_INVALID_PARAMETER  # type: ignore[arg-type]
            assert await peer.get_data(-1) == (Error.ERR_INVALID_PARAMETER, b"")
            assert peer.bind(-1) == Error.ERR_INVALID_PARAMETER
            assert peer.bind(0, "localhost") == Error.ERR_INVALID_PARAMETER
            with pytest.raises(TypeError):
                peer.connect_to_host(object(), 80)  # type: ignore[arg-type]
            assert peer.get_status() == Status.STATUS_NONE
            peer.connect_to_host("127.0.0.1", free_port())
            assert peer.connect_to_host("127.0.0.1", 80) == Error.ERR_ALREADY_IN_USE


async def test_outside_the_block_is_unconfigured() -> None:
    peer = StreamPeerTCP()
    assert peer.connect_to_host("127.0.0.1", 80) == Error.ERR_UNCONFIGURED
    assert peer.bind(0) == Error.ERR_UNCONFIGURED
    assert peer.get_status() == Status.STATUS_NONE
    await trio.lowlevel.checkpoint()


async def test_not_connected_calls_fail_like_godot() -> None:
    with trio.fail_after(5):
        async with StreamPeerTCP() as peer:
            assert await peer.get_data(1) == (Error.FAILED, b"")
            assert peer.get_partial_data(1) == (Error.FAILED, b"")
            assert await peer.put_data(b"x") == Error.FAILED
            assert peer.put_partial_data(b"x") == (Error.FAILED, 0)
            assert await peer.get_u32() == 0
            assert await peer.get_var() is None
            assert peer.get_available_bytes() == 0
            assert peer.get_local_port() == 0
            assert peer.poll() == Error.OK


async def test_peer_close_keeps_buffered_bytes_then_eof(listener: trio.SocketListener) -> None:
    with trio.fail_after(5):
        async with StreamPeerTCP() as peer:
            peer.connect_to_host("127.0.0.1", port_of(listener))
            server = await listener.accept()
            await server.send_all(b"xyz")
            await server.aclose()
            await connected(peer)
            while peer.get_available_bytes() < 3:
                await peer.wait()
            await peer.wait()  # the FIN too
            assert peer.poll() == Error.OK
            assert peer.get_status() == Status.STATUS_CONNECTED  # bytes still to read
            assert await peer.get_data(5) == (Error.ERR_FILE_EOF, b"xyz")
            assert peer.get_status() == Status.STATUS_NONE


async def test_peer_close_is_status_none_at_poll(listener: trio.SocketListener) -> None:
    with trio.fail_after(5):
        async with StreamPeerTCP() as peer:
            peer.connect_to_host("127.0.0.1", port_of(listener))
            server = await listener.accept()
            await connected(peer)
            await server.aclose()
            await peer.wait()
            assert peer.poll() == Error.OK
            assert peer.get_status() == Status.STATUS_NONE


async def test_reset_is_a_connection_error(listener: trio.SocketListener) -> None:
    with trio.fail_after(5):
        async with StreamPeerTCP() as peer:
            peer.connect_to_host("127.0.0.1", port_of(listener))
            server = await listener.accept()
            await connected(peer)
            server.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            await server.aclose()  # linger 0: the kernel sends RST
            await peer.wait()
            assert peer.poll() == Error.ERR_CONNECTION_ERROR
            assert peer.get_status() == Status.STATUS_ERROR


async def test_bind_sets_the_source_port(listener: trio.SocketListener) -> None:
    with trio.fail_after(5):
        async with StreamPeerTCP() as peer:
            assert peer.bind(0, "127.0.0.1") == Error.OK
            local = peer.get_local_port()
            assert local != 0
            assert peer.bind(0) == Error.ERR_ALREADY_IN_USE
            peer.connect_to_host("127.0.0.1", port_of(listener))
            server = await listener.accept()
            assert server.socket.getpeername()[1] == local
            await connected(peer)
            assert peer.get_local_port() == local
            await server.aclose()


async def test_partial_puts_go_before_later_puts(listener: trio.SocketListener) -> None:
    with trio.fail_after(5):
        async with StreamPeerTCP() as peer:
            peer.connect_to_host("127.0.0.1", port_of(listener))
            server = await listener.accept()
            await connected(peer)
            peer.set_no_delay(True)
            assert peer.put_partial_data(b"one,") == (Error.OK, 4)
            assert await peer.put_data(b"two") == Error.OK
            got = b""
            while len(got) < 7:
                got += await server.receive_some()
            assert got == b"one,two"
            await server.aclose()


async def test_nothing_outlives_the_block(
    listener: trio.SocketListener, task_counter: TaskCounter
) -> None:
    with trio.fail_after(5):
        fds = open_fds()
        alive = task_counter.alive
        async with StreamPeerTCP() as peer:
            peer.connect_to_host("127.0.0.1", port_of(listener))
            server = await listener.accept()
            await connected(peer)
            assert task_counter.alive > alive
        assert task_counter.alive == alive
        await server.aclose()
        assert open_fds() == fds


async def test_cancelled_block_ends_everything(
    listener: trio.SocketListener, task_counter: TaskCounter
) -> None:
    with trio.fail_after(5):
        fds = open_fds()
        alive = task_counter.alive
        with trio.move_on_after(0.2) as cancelled:
            async with StreamPeerTCP() as peer:
                peer.connect_to_host("127.0.0.1", port_of(listener))
                await peer.get_data(1)  # nothing comes: the deadline cancels it
        assert cancelled.cancelled_caught
        assert task_counter.alive == alive
        server = await listener.accept()
        await server.aclose()
        assert open_fds() == fds


async def test_a_body_exception_comes_out_unwrapped() -> None:
    with trio.fail_after(5), pytest.raises(KeyError):
        async with trionet.StreamPeerTCP():
            raise KeyError("body")


# -- an awaiting get_data reads the transport itself (no task switch) -------------------


async def echo_server(listener: trio.SocketListener, task_status: trio.TaskStatus[None]) -> None:
    server = await listener.accept()
    task_status.started()
    async with server:
        async for data in server:
            await server.send_all(data)


async def test_request_response_reads_directly_then_buffering_resumes(
    listener: trio.SocketListener, monkeypatch: pytest.MonkeyPatch
) -> None:
    direct = 0
    receive_direct = Link.receive_direct

    async def counted(link: Link) -> None:
        nonlocal direct
        direct += 1
        await receive_direct(link)

    monkeypatch.setattr(Link, "receive_direct", counted)
    with trio.fail_after(5):
        async with StreamPeerTCP() as peer, trio.open_nursery() as nursery:
            peer.connect_to_host("127.0.0.1", port_of(listener))
            await nursery.start(echo_server, listener)
            await connected(peer)
            for i in range(50):
                assert await peer.put_data(b"%04d" % i) == Error.OK
                assert await peer.get_data(4) == (Error.OK, b"%04d" % i)
            assert direct > 0  # the waiter received itself
            # Without an awaited read, the reader task buffers again (Godot's poll model).
            assert await peer.put_data(b"later") == Error.OK
            while peer.get_available_bytes() < 5:
                await peer.wait()
            assert peer.get_partial_data(5) == (Error.OK, b"later")
            peer.disconnect_from_host()
            nursery.cancel_scope.cancel()


async def test_direct_read_sees_eof(listener: trio.SocketListener) -> None:
    with trio.fail_after(5):
        async with StreamPeerTCP() as peer:
            peer.connect_to_host("127.0.0.1", port_of(listener))
            server = await listener.accept()
            await connected(peer)

            async def send_and_close() -> None:
                await trio.sleep(0.05)  # get_data is waiting on an empty buffer by now
                await server.send_all(b"xyz")
                await server.aclose()

            async with trio.open_nursery() as nursery:
                nursery.start_soon(send_and_close)
                assert await peer.get_data(10) == (Error.ERR_FILE_EOF, b"xyz")
            assert peer.get_status() == Status.STATUS_NONE


async def test_direct_read_sees_a_reset(listener: trio.SocketListener) -> None:
    with trio.fail_after(5):
        async with StreamPeerTCP() as peer:
            peer.connect_to_host("127.0.0.1", port_of(listener))
            server = await listener.accept()
            await connected(peer)

            async def reset() -> None:
                await trio.sleep(0.05)
                linger = struct.pack("ii", 1, 0)
                server.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
                await server.aclose()

            async with trio.open_nursery() as nursery:
                nursery.start_soon(reset)
                assert await peer.get_data(4) == (Error.ERR_CONNECTION_ERROR, b"")
            assert peer.get_status() == Status.STATUS_ERROR


async def test_disconnect_during_a_direct_read(listener: trio.SocketListener) -> None:
    with trio.fail_after(5):
        async with StreamPeerTCP() as peer:
            peer.connect_to_host("127.0.0.1", port_of(listener))
            server = await listener.accept()
            await connected(peer)

            async def disconnect() -> None:
                await trio.sleep(0.05)
                peer.disconnect_from_host()

            async with trio.open_nursery() as nursery:
                nursery.start_soon(disconnect)
                assert await peer.get_data(4) == (Error.FAILED, b"")
            assert peer.get_status() == Status.STATUS_NONE
            await server.aclose()


async def test_cancelled_direct_read_loses_nothing(listener: trio.SocketListener) -> None:
    with trio.fail_after(5):
        async with StreamPeerTCP() as peer:
            peer.connect_to_host("127.0.0.1", port_of(listener))
            server = await listener.accept()
            await connected(peer)
            with trio.move_on_after(0.05):
                await peer.get_data(4)  # nothing was sent: cancelled while receiving
            await server.send_all(b"ab")
            with trio.move_on_after(0.1):
                await peer.get_data(4)  # cancelled with two bytes collected
            await server.send_all(b"cd")
            assert await peer.get_data(4) == (Error.OK, b"abcd")
            await server.aclose()
