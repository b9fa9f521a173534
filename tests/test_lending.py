"""Lent reading: an ``events()`` consumer that keeps up reads the socket itself.

First the queue's own rules, with a scripted ``pull`` (no network): when reading is lent,
who may read, and when it comes back; and the consumer's receive over a scripted
transport.  Then TCP connections over loopback sockets, where
the consumer does the reading: the peer's FIN, a reset, ``terminate()``, a cancelled
consumer, and a consumer whose send has to wait, each with the event order unchanged and
no byte lost.
"""

from __future__ import annotations

import socket

import pytest
import trio

from trionet import TCPConnection, TCPEvent, TCPListener
from trionet._channel import EventChannel, EventQueue
from trionet._lending import LentReading
from trionet._transport import Transport

HOST = "127.0.0.1"


# -- the queue's rules ---------------------------------------------------------------------


class ScriptedPull:
    """A ``pull`` that puts the next scripted event each time a consumer calls it."""

    def __init__(self) -> None:
        self.queue: EventQueue[str] = EventQueue(4, self.pull)
        self.script: list[str] = []
        self.calls = 0
        self.task: trio.lowlevel.Task | None = None

    async def pull(self) -> None:
        self.calls += 1
        self.task = trio.lowlevel.current_task()
        await trio.lowlevel.checkpoint()
        if self.script:
            self.queue.put(self.script.pop(0))


async def test_reading_is_lent_only_to_a_consumer_that_waited() -> None:
    source = ScriptedPull()
    channel = EventChannel(source.queue)
    source.queue.put("a")  # nobody was waiting: no sign that a consumer keeps up
    assert not source.queue.lendable
    assert await channel.receive() == "a"
    async with trio.open_nursery() as nursery:
        received: list[str] = []

        async def consume() -> None:
            received.append(await channel.receive())

        nursery.start_soon(consume)
        await trio.testing.wait_all_tasks_blocked()
        source.queue.put("b")  # wakes the waiting consumer
    assert received == ["b"]
    assert source.queue.lendable


async def test_a_consumer_reads_while_lent_and_the_producer_waits() -> None:
    source = ScriptedPull()
    channel = EventChannel(source.queue)
    source.script = ["x", "y", "z"]
    source.queue._demand = True
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            lent_over = trio.Event()

            async def producer() -> None:
                await source.queue.lend()
                lent_over.set()

            nursery.start_soon(producer)
            await trio.testing.wait_all_tasks_blocked()
            assert source.queue.lent
            assert [await channel.receive() for _ in range(3)] == ["x", "y", "z"]
            assert source.task is trio.lowlevel.current_task()  # the consumer read
            assert not lent_over.is_set()
            source.queue.take_back()
            await lent_over.wait()
    assert not source.queue.lent
    assert source.calls == 3


async def test_taking_back_during_a_pull_waits_for_it_to_end() -> None:
    source = ScriptedPull()
    channel = EventChannel(source.queue)
    release = trio.Event()
    order: list[str] = []

    async def slow_pull() -> None:
        order.append("pull started")
        await release.wait()
        source.queue.put("late")
        order.append("pull ended")

    source.queue._pull = slow_pull
    source.queue._demand = True
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:

            async def producer() -> None:
                await source.queue.lend()
                order.append("producer reads again")

            async def consumer() -> None:
                order.append(await channel.receive())

            nursery.start_soon(producer)
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(consumer)
            await trio.testing.wait_all_tasks_blocked()
            source.queue.take_back()
            await trio.testing.wait_all_tasks_blocked()
            assert "producer reads again" not in order  # a read is still in progress
            release.set()
    assert order[:2] == ["pull started", "pull ended"]
    assert sorted(order[2:]) == ["late", "producer reads again"]


async def test_closing_every_channel_takes_reading_back() -> None:
    source = ScriptedPull()
    channel = EventChannel(source.queue)
    source.queue._demand = True
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(source.queue.lend)
            await trio.testing.wait_all_tasks_blocked()
            assert source.queue.lent
            await channel.aclose()
    assert not source.queue.lent


async def test_a_cancelled_lend_takes_reading_back() -> None:
    source = ScriptedPull()
    EventChannel(source.queue)
    source.queue._demand = True
    with trio.move_on_after(0.01):
        await source.queue.lend()
    assert not source.queue.lent


# -- the consumer's receive (LentReading) --------------------------------------------------


class ScriptedTransport(Transport):
    """Answers ``receive_nowait`` from a script; a blocking receive is only recorded."""

    def __init__(self, script: list[bytes | None]) -> None:
        super().__init__()
        self.script = script
        self.blocking_receives = 0

    def receive_nowait(self) -> bytes | None:
        return self.script.pop(0) if self.script else None

    async def _receive_some(self, missed: bool = False) -> bytes:
        self.blocking_receives += 1
        await trio.sleep_forever()
        raise AssertionError("unreachable")


def lent_reading() -> LentReading:
    queue: EventQueue[str] = EventQueue(4, trio.lowlevel.checkpoint)
    EventChannel(queue)
    queue.lent = True
    return LentReading(queue)


async def test_the_peers_bytes_after_one_pass_need_no_blocking_read() -> None:
    reading = lent_reading()
    transport = ScriptedTransport([None, b"answer"])
    with trio.fail_after(5):
        assert await reading.receive(transport) == b"answer"
    assert transport.blocking_receives == 0


async def test_reading_taken_back_during_that_pass_reads_nothing() -> None:
    reading = lent_reading()
    transport = ScriptedTransport([None, b"for the network task"])
    original = transport.receive_nowait

    def first_try_then_reclaim() -> bytes | None:
        data = original()
        reading.reclaim()  # as if the connection must end while the consumer yields
        return data

    transport.receive_nowait = first_try_then_reclaim  # type: ignore[method-assign]
    with trio.fail_after(5):
        assert await reading.receive(transport) is None
    assert transport.script == [b"for the network task"]  # left in the socket
    assert transport.blocking_receives == 0


async def test_nothing_there_waits_in_a_read_that_reclaim_stops() -> None:
    reading = lent_reading()
    transport = ScriptedTransport([])
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:

            async def reclaim_when_blocked() -> None:
                await trio.testing.wait_all_tasks_blocked()
                reading.reclaim()

            nursery.start_soon(reclaim_when_blocked)
            assert await reading.receive(transport) is None
    assert transport.blocking_receives == 1


# -- TCP over loopback ---------------------------------------------------------------------


class EchoServer:
    """An events() echo server that keeps the accepted connection and its events."""

    def __init__(self) -> None:
        self.conn: TCPConnection | None = None
        self.types: list[str] = []
        self.connected = trio.Event()
        self.done = trio.Event()

    async def serve(self, conn: TCPConnection) -> None:
        self.conn = conn
        self.connected.set()
        try:
            async for event in conn.events():
                self.types.append(event.type.value)
                if event.type == "data":
                    assert event.data is not None
                    await conn.send(event.data)
        finally:
            self.done.set()

    @property
    def lent(self) -> bool:
        assert self.conn is not None
        assert self.conn._lending is not None
        return self.conn._lending.queue.lent


async def round_trips(stream: trio.SocketStream, count: int) -> None:
    for i in range(count):
        message = b"%08d" % i
        await stream.send_all(message)
        got = b""
        while len(got) < len(message):
            got += await stream.receive_some(64)
        assert got == message


@pytest.fixture
async def echo() -> EchoServer:
    return EchoServer()


async def open_echo(
    nursery: trio.Nursery, echo: EchoServer
) -> tuple[TCPListener, trio.SocketStream]:
    listener = await nursery.start(_run_listener, echo)
    stream = await trio.open_tcp_stream(HOST, listener.port)
    return listener, stream


async def _run_listener(echo: EchoServer, *, task_status: trio.TaskStatus[TCPListener]) -> None:
    async with TCPListener.new(0, echo.serve, host=HOST, no_delay=True) as listener:
        task_status.started(listener)
        await trio.sleep_forever()


async def test_a_keeping_up_consumer_reads_and_events_are_unchanged(echo: EchoServer) -> None:
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            _, stream = await open_echo(nursery, echo)
            await round_trips(stream, 20)
            assert echo.lent  # the network task waits; the consumer reads
            await stream.send_eof()
            assert await stream.receive_some(64) == b""  # our side closed after close
            await echo.done.wait()
            await stream.aclose()
            nursery.cancel_scope.cancel()
    assert echo.types == ["connection"] + ["data"] * 20 + ["close", "terminate"]


async def test_reset_while_lent_is_an_error(echo: EchoServer) -> None:
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            _, stream = await open_echo(nursery, echo)
            await round_trips(stream, 5)
            assert echo.lent
            sock = stream.socket
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
            sock.close()  # RST
            await echo.done.wait()
            nursery.cancel_scope.cancel()
    assert echo.types[-2:] == ["error", "terminate"]
    assert echo.conn is not None
    assert echo.conn.errors


async def test_terminate_while_the_consumer_waits_on_the_socket(echo: EchoServer) -> None:
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            _, stream = await open_echo(nursery, echo)
            await round_trips(stream, 5)
            await trio.testing.wait_all_tasks_blocked()
            assert echo.lent
            assert echo.conn is not None
            echo.conn.terminate()
            assert await stream.receive_some(64) == b""  # FIN from the server
            await stream.aclose()
            await echo.done.wait()
            nursery.cancel_scope.cancel()
    assert echo.types == ["connection"] + ["data"] * 5 + ["close", "terminate"]
    assert echo.conn.errors == []


async def test_a_cancelled_consumer_loses_no_data() -> None:
    got: list[bytes] = []
    cancelled = trio.Event()
    resumed = trio.Event()

    async def serve(conn: TCPConnection) -> None:
        events = conn.events()
        assert (await events.receive()).type == "connection"
        first = await events.receive()
        assert first.data is not None
        got.append(first.data)
        await conn.send(b"ok")
        with trio.move_on_after(0.05):
            await events.receive()  # reading is lent now: this waits on the socket
        cancelled.set()
        await resumed.wait()
        event = await events.receive()
        assert event.data is not None
        got.append(event.data)
        await conn.send(b"ok")

    with trio.fail_after(10):
        async with TCPListener.new(0, serve, host=HOST) as listener:
            stream = await trio.open_tcp_stream(HOST, listener.port)
            await stream.send_all(b"one")
            assert await stream.receive_some(64) == b"ok"
            await cancelled.wait()
            await stream.send_all(b"two")
            resumed.set()
            assert await stream.receive_some(64) == b"ok"
            await stream.aclose()
    assert got == [b"one", b"two"]


async def test_a_waiting_send_takes_reading_back_so_the_peer_is_read() -> None:
    # The consumer answers the first message with more than the socket buffers hold while
    # the peer goes on writing and does not read yet: the network task must take the
    # reading back and queue what the peer writes, or both sides would wait on each other.
    big = b"x" * (16 * 1024 * 1024)
    queued_during_send: list[int] = []

    async def serve(conn: TCPConnection) -> None:
        async for event in conn.events():
            if event.data == b"ping":
                await conn.send(b"k")
            elif event.data == b"go":
                await conn.send(big)
                assert conn._lending is not None
                queued_during_send.append(len(conn._lending.queue))

    with trio.fail_after(20):
        async with TCPListener.new(0, serve, host=HOST) as listener:
            stream = await trio.open_tcp_stream(HOST, listener.port)
            for _ in range(3):  # round trips: the consumer keeps up, reading is lent
                await stream.send_all(b"ping")
                assert await stream.receive_some(8) == b"k"
            await stream.send_all(b"go")
            received = len(await stream.receive_some(1 << 20))  # the server is sending
            for _ in range(8):  # while its send waits for us, we write without reading
                await stream.send_all(b"y" * 1024)
            while received < len(big):
                received += len(await stream.receive_some(1 << 20))
            await stream.aclose()
    assert received == len(big)
    assert queued_during_send
    assert queued_during_send[0] > 0


async def test_events_of_a_peer_that_stops_reading_stay_ordered() -> None:
    # The peer writes without reading the echo: the consumer's sends wait, reading goes
    # back and forth between the tasks, and every byte still arrives once, in order.
    total = 4 * 1024 * 1024
    received = bytearray()

    async def serve(conn: TCPConnection) -> None:
        async for event in conn.events():
            if event.type == "data":
                assert event.data is not None
                received.extend(event.data)
                await conn.send(event.data)

    pattern = bytes(range(256)) * (total // 256)
    with trio.fail_after(30):
        async with TCPListener.new(0, serve, host=HOST) as listener:
            stream = await trio.open_tcp_stream(HOST, listener.port)
            echoed = bytearray()
            async with trio.open_nursery() as nursery:

                async def write() -> None:
                    view = memoryview(pattern)
                    for start in range(0, total, 256 * 1024):
                        await stream.send_all(view[start : start + 256 * 1024])
                    await stream.send_eof()

                nursery.start_soon(write)
                while len(echoed) < total:  # small reads: slower than the writer
                    echoed += await stream.receive_some(4096)
            await stream.aclose()
    assert bytes(received) == pattern
    assert bytes(echoed) == pattern


async def test_event_types_are_events() -> None:
    # The lent path builds the same TCPEvent objects as the network task.
    events: list[TCPEvent] = []

    async def serve(conn: TCPConnection) -> None:
        async for event in conn.events():
            events.append(event)
            if event.type == "data":
                await conn.send(b"!")

    with trio.fail_after(10):
        async with TCPListener.new(0, serve, host=HOST) as listener:
            stream = await trio.open_tcp_stream(HOST, listener.port)
            for message in (b"a", b"b", b"c"):
                await stream.send_all(message)
                assert await stream.receive_some(8) == b"!"
            await stream.aclose()
    data = [event for event in events if event.type == "data"]
    assert [event.data for event in data] == [b"a", b"b", b"c"]
    assert all(isinstance(event, TCPEvent) and event.port for event in data)
