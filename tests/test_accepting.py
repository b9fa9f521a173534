"""Accepting on the listening socket itself (``trionet._sockets``), and the servers on it.

What :func:`accept_sockets` promises: every pending connection is taken, other tasks run
at least every ``ACCEPT_BATCH`` connections, failures that concern one connection are
skipped, a closed listening socket ends the loop, and failures of the listening socket
reach the caller.  Then that both servers take that path without TLS, and report an
accept failure and keep accepting.
"""

from __future__ import annotations

import errno
import itertools
import socket
from collections.abc import Iterator
from typing import Any

import pytest
import trio

import trionet
import trionet._accepting as accepting_module
from trionet import TCPListener, WebSocketServer
from trionet._sockets import ACCEPT_BATCH, accept_sockets, adopt, listening_socket

HOST = "127.0.0.1"


class _ScriptedSocket(socket.socket):
    """A listening socket whose first ``accept`` calls raise the errors given."""

    failures: list[OSError]

    def accept(self) -> tuple[socket.socket, Any]:
        if self.failures:
            raise self.failures.pop(0)
        return super().accept()


@pytest.fixture
def listening() -> Iterator[socket.socket]:
    """A non-blocking listening socket on loopback (backlog 128)."""
    sock = _ScriptedSocket(socket.AF_INET, socket.SOCK_STREAM)
    sock.failures = []
    sock.bind((HOST, 0))
    sock.listen(128)
    sock.setblocking(False)
    with sock:
        yield sock


def _connect(listening: socket.socket, count: int) -> list[socket.socket]:
    """``count`` clients whose connections wait in the backlog (loopback completes them)."""
    address = listening.getsockname()
    clients = []
    for _ in range(count):
        client = socket.create_connection(address, timeout=5)
        clients.append(client)
    return clients


async def test_takes_a_burst_and_lets_others_run_between_batches(
    listening: socket.socket,
) -> None:
    count = 3 * ACCEPT_BATCH + 5
    clients = _connect(listening, count)
    accepted: list[socket.socket] = []
    seen: list[int] = []  # how many were accepted each time the observer ran

    async def observe() -> None:
        while True:
            seen.append(len(accepted))
            await trio.lowlevel.checkpoint()

    try:
        with trio.fail_after(5):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(observe)
                await trio.lowlevel.checkpoint()  # the observer runs first
                nursery.start_soon(accept_sockets, listening, lambda s, r: accepted.append(s))
                while len(accepted) < count:
                    await trio.lowlevel.checkpoint()
                seen.append(len(accepted))  # the last look, as the observer's would be
                nursery.cancel_scope.cancel()
        assert len(accepted) == count
        steps = [later - earlier for earlier, later in itertools.pairwise(seen)]
        # trio runs each runnable task once per batch, in random order: between two looks
        # the accept loop can have had two turns (after one look, then before the next).
        # Without its pauses it would take all the connections in one turn.
        assert max(steps) <= 2 * ACCEPT_BATCH < count
    finally:
        for sock in accepted + clients:
            sock.close()


async def test_hands_on_the_peer_address(listening: socket.socket) -> None:
    clients = _connect(listening, 1)
    remotes: list[tuple[str, int]] = []
    try:
        with trio.fail_after(5):
            async with trio.open_nursery() as nursery:

                def accepted(sock: socket.socket, remote: tuple[str, int]) -> None:
                    sock.close()
                    remotes.append(remote)
                    nursery.cancel_scope.cancel()

                nursery.start_soon(accept_sockets, listening, accepted)
        assert remotes == [(HOST, clients[0].getsockname()[1])]
    finally:
        clients[0].close()


async def test_skips_failures_of_one_connection(listening: socket.socket) -> None:
    assert isinstance(listening, _ScriptedSocket)
    listening.failures = [
        OSError(errno.ECONNABORTED, "aborted"),
        OSError(errno.EPERM, "firewall"),
    ]
    clients = _connect(listening, 1)
    accepted: list[socket.socket] = []
    try:
        with trio.fail_after(5):
            async with trio.open_nursery() as nursery:

                def take(sock: socket.socket, remote: tuple[str, int]) -> None:
                    accepted.append(sock)
                    nursery.cancel_scope.cancel()

                nursery.start_soon(accept_sockets, listening, take)
        assert len(accepted) == 1
        assert listening.failures == []
    finally:
        for sock in accepted + clients:
            sock.close()


async def test_raises_failures_of_the_listening_socket(listening: socket.socket) -> None:
    assert isinstance(listening, _ScriptedSocket)
    listening.failures = [OSError(errno.EMFILE, "too many open files")]
    with trio.fail_after(5), pytest.raises(OSError, match="too many") as caught:
        await accept_sockets(listening, lambda s, r: None)
    assert caught.value.errno == errno.EMFILE


async def test_ends_when_the_listening_socket_is_closed(listening: socket.socket) -> None:
    async with trio.open_nursery() as nursery:
        done = trio.Event()

        async def accept_until_closed() -> None:
            await accept_sockets(listening, lambda s, r: None)
            done.set()

        nursery.start_soon(accept_until_closed)
        await trio.testing.wait_all_tasks_blocked()
        trio.lowlevel.notify_closing(listening)
        listening.close()
        with trio.fail_after(5):
            await done.wait()
    # Closed before it is called: returns at once too.
    with trio.fail_after(5):
        await accept_sockets(listening, lambda s, r: None)


async def test_adopt_sets_the_socket_up(listening: socket.socket) -> None:
    (client,) = _connect(listening, 1)
    sock, _ = listening.accept()
    transport = adopt(sock, no_delay=False)
    try:
        assert sock.gettimeout() == 0.0
        assert not sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        client.sendall(b"ping")
        with trio.fail_after(5):
            assert await transport.receive() == b"ping"
    finally:
        await transport.aclose()
        client.close()
    (client,) = _connect(listening, 1)
    sock, _ = listening.accept()
    transport = adopt(sock, no_delay=True)
    try:
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    finally:
        await transport.aclose()
        client.close()


async def test_only_trios_socket_listeners_are_taken_over() -> None:
    (listener,) = await trio.open_tcp_listeners(0, host=HOST)
    async with listener:
        assert listening_socket(listener) is listener.socket._sock  # type: ignore[attr-defined]

    class Elsewhere(trio.abc.Listener[trio.abc.Stream]):
        async def accept(self) -> trio.abc.Stream:
            raise NotImplementedError

        async def aclose(self) -> None:
            pass

    assert listening_socket(Elsewhere()) is None


class _Counting:
    """Wraps accept_sockets, counting the loops started; fails the first as asked."""

    def __init__(self, first_failure: OSError | None = None) -> None:
        self.calls = 0
        self.first_failure = first_failure

    async def __call__(self, sock: socket.socket, accepted: Any) -> None:
        self.calls += 1
        if self.calls == 1 and self.first_failure is not None:
            raise self.first_failure
        await accept_sockets(sock, accepted)


class _Echo:
    """A TCPListener handler that echoes every connection's data."""

    def on_connection(self, listener: object, event: object) -> object:
        return self

    async def on_data(self, conn: trionet.TCPConnection, event: trionet.TCPEvent) -> None:
        assert event.data is not None
        await conn.send(event.data)


async def _round_trip(port: int) -> bytes:
    stream = await trio.open_tcp_stream(HOST, port)
    async with stream:
        await stream.send_all(b"hello")
        return bytes(await stream.receive_some(100))


async def test_tcp_listener_accepts_on_the_socket_and_survives_emfile(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    counting = _Counting(OSError(errno.EMFILE, "Too many open files"))
    monkeypatch.setattr(accepting_module, "accept_sockets", counting)
    with trio.fail_after(10):
        async with TCPListener.new(0, _Echo(), host=HOST) as listener:
            assert await _round_trip(listener.port) == b"hello"
            assert counting.calls == 2  # failed once, then accepted again
            (record,) = listener.errors
            assert record.err_code == errno.EMFILE
            assert "accept failed" in record.message


async def test_websocket_server_accepts_on_the_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    counting = _Counting()
    monkeypatch.setattr(accepting_module, "accept_sockets", counting)

    async def echo(ws: trionet.WebSocketConnection) -> None:
        async for event in ws.events():
            if event.data is not None:
                await ws.send(event.data)

    with trio.fail_after(10):
        async with WebSocketServer.new(echo, host=HOST) as server:
            url = f"ws://{HOST}:{server.port}/"
            async with trionet.WebSocket.new(url, None, ping_interval=None) as client:
                events = client.events()
                assert (await events.receive()).type == "open"
                await client.send("hi")
                assert (await events.receive()).data == "hi"
    assert counting.calls == 1
