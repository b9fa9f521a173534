"""What a waiting connection keeps alive.

Idle connections are most of a server's connections, so whatever a waiting task still
references is paid once per connection: an exception being handled while its handler
awaits (Python keeps it, and its traceback, until the handler ends), or the last message
and its event left in the network task's locals.  These tests look at the suspended tasks
themselves (the objects each coroutine of the task's await chain references), once every
task is blocked, so they do not depend on what else the test process holds.
"""

from __future__ import annotations

import gc
import socket
import weakref
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio
import trio.testing

from trionet import TCPListener
from trionet._channel import EventChannel, EventQueue
from trionet._sockets import accept_sockets, adopt
from trionet._wshandshake import HandshakeLimits, parse_request

from .wshelpers import OP_BINARY, OP_TEXT, frame, raw_client, serve, upgrade_request

HOST = "127.0.0.1"


def held_exceptions(task: trio.lowlevel.Task) -> list[BaseException]:
    """The exceptions referenced by the coroutines ``task`` is suspended in."""
    found: list[BaseException] = []
    awaited: Any = task.coro
    while awaited is not None:
        found += [ref for ref in gc.get_referents(awaited) if isinstance(ref, BaseException)]
        awaited = getattr(awaited, "cr_await", None) or getattr(awaited, "gi_yieldfrom", None)
    return found


async def start_task(nursery: trio.Nursery, fn: Any, *args: Any) -> trio.lowlevel.Task:
    """Run ``fn(*args)`` in a new task of ``nursery``; returns that task."""

    async def run(task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started(trio.lowlevel.current_task())
        await fn(*args)

    task: trio.lowlevel.Task = await nursery.start(run)
    return task


@pytest.fixture
async def socket_pair() -> AsyncIterator[tuple[socket.socket, socket.socket]]:
    """A connected pair of stdlib TCP sockets: (server side, client side)."""
    with socket.create_server((HOST, 0)) as listening:
        client = socket.create_connection(listening.getsockname())
        server, _ = listening.accept()
        with client, server:
            yield server, client


async def test_a_receive_that_waits_holds_no_exception(
    socket_pair: tuple[socket.socket, socket.socket],
) -> None:
    server, _client = socket_pair
    transport = adopt(server.dup(), no_delay=True)
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            task = await start_task(nursery, transport.receive)
            await trio.testing.wait_all_tasks_blocked()
            assert transport.waiting  # past the failed recv, the yield and the retry
            assert held_exceptions(task) == []
            nursery.cancel_scope.cancel()
    await transport.aclose()


async def test_a_send_that_waits_holds_no_exception(
    socket_pair: tuple[socket.socket, socket.socket],
) -> None:
    server, _client = socket_pair  # the client never reads: the send has to wait
    transport = adopt(server.dup(), no_delay=True)
    blocked = trio.Event()
    transport.on_send_wait = blocked.set
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            task = await start_task(nursery, transport.send, b"x" * (64 << 20))
            await blocked.wait()
            await trio.testing.wait_all_tasks_blocked()
            assert held_exceptions(task) == []
            nursery.cancel_scope.cancel()
    await transport.aclose()


async def test_an_accept_loop_that_waits_holds_no_exception() -> None:
    with socket.create_server((HOST, 0)) as listening:
        listening.setblocking(False)
        accepted: list[socket.socket] = []
        with trio.fail_after(5):
            async with trio.open_nursery() as nursery:
                task = await start_task(
                    nursery, accept_sockets, listening, lambda s, _: accepted.append(s)
                )
                with socket.create_connection(listening.getsockname()):
                    await trio.testing.wait_all_tasks_blocked()
                    assert len(accepted) == 1  # it took the connection, then waited again
                    assert held_exceptions(task) == []
                nursery.cancel_scope.cancel()
        for sock in accepted:
            sock.close()


@pytest.mark.parametrize("method", ["receive", "__anext__"])
async def test_an_event_channel_that_waits_holds_no_exception(method: str) -> None:
    queue: EventQueue[str] = EventQueue(4)
    channel = EventChannel(queue)
    received: list[str] = []

    async def take() -> None:
        received.append(await getattr(channel, method)())

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            task = await start_task(nursery, take)
            await trio.testing.wait_all_tasks_blocked()
            assert held_exceptions(task) == []
            queue.put("event")
    assert received == ["event"]


class _Remembering:
    """Echoes each message and keeps only weak references to its events."""

    def __init__(self) -> None:
        self.events: list[weakref.ref[Any]] = []

    async def on_message(self, ws: Any, event: Any) -> None:
        self.events.append(weakref.ref(event))
        await ws.send(event.data)


class _RememberingServer:
    def __init__(self) -> None:
        self.conns: list[_Remembering] = []

    def on_connection(self, wss: Any, event: Any) -> _Remembering:
        self.conns.append(_Remembering())
        return self.conns[-1]


@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY])
async def test_an_idle_websocket_connection_keeps_no_message(opcode: int) -> None:
    handler = _RememberingServer()
    with trio.fail_after(10):
        async with serve(handler) as wss, raw_client(wss.port) as client:
            for payload in (b"first", b"second"):
                await client.send(frame(opcode, payload))
                assert await client.read_frame() == (0x80 | opcode, opcode, payload)
            await trio.testing.wait_all_tasks_blocked()  # the server waits for more
            gc.collect()
            (conn,) = handler.conns
            assert len(conn.events) == 2
            assert [ref() for ref in conn.events] == [None, None]


class _RememberingTCP:
    """A TCP listener handler whose connections echo and weakly remember each event."""

    def __init__(self) -> None:
        self.events: list[weakref.ref[Any]] = []

    def on_connection(self, listener: Any, event: Any) -> _RememberingTCP:
        return self

    async def on_data(self, conn: Any, event: Any) -> None:
        self.events.append(weakref.ref(event))
        await conn.send(event.data)


async def test_an_idle_tcp_connection_keeps_no_chunk() -> None:
    handler = _RememberingTCP()
    with trio.fail_after(10):
        async with TCPListener.new(0, handler, host=HOST) as listener:
            client = await trio.open_tcp_stream(HOST, listener.port)
            async with client:
                await client.send_all(b"x" * 1000)
                echoed = b""
                while len(echoed) < 1000:
                    echoed += await client.receive_some()
                await trio.testing.wait_all_tasks_blocked()  # the server waits for more
                gc.collect()
                assert handler.events  # one event per chunk the server read
                assert [ref() for ref in handler.events] == [None] * len(handler.events)


def test_requests_share_what_is_the_same() -> None:
    def parse() -> Any:
        head = upgrade_request(
            "/chat", key="dGhlIHNhbXBsZSBub25jZQ==", extra="X-Long: " + "v" * 40 + "\r\n"
        )
        return parse_request(head, HandshakeLimits(), (HOST, 1))[0]

    one, two = parse(), parse()
    assert one.headers == two.headers
    assert one.query is two.query  # no query: one shared empty mapping
    for name, value in one.headers.items():
        (same_name,) = (n for n in two.headers if n == name)
        assert same_name is name  # header names: one copy for every connection
        if len(value) <= 16:
            assert two.headers[name] is value  # short values ("websocket", "13") too
    long_one, long_two = one.headers["x-long"], two.headers["x-long"]
    assert long_one == long_two
    assert long_one is not long_two  # long values are not interned
