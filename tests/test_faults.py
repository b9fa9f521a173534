"""Single TCP faults, pinned down deterministically over trionet.testing's memory streams.

Raising callbacks, resets, the peer's FIN, cancellation, terminate mid-transfer, a vanished
peer, a stalled consumer, a listener whose connections fail, and the close-path races that
earlier versions got wrong.  The seeded schedules are in ``test_fault_schedules.py``.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable
from typing import Any

import pytest
import trio
import trio.testing

from trionet import (
    ConnectionClosedError,
    ErrorCode,
    LocalProtocolError,
    TCPConnection,
    TCPEvent,
)
from trionet._connection import EVENT_BUFFER
from trionet._transport import RECEIVE_SIZE
from trionet.testing import (
    EventRecorder,
    MemoryTCPStream,
    open_connection_pair,
    open_memory_listener,
)

from .faultkit import (
    CLOSE_TIMEOUT,
    STYLES,
    Side,
    assert_grammar,
    codes,
    end_of,
)

# -- single faults, deterministic --------------------------------------------------------


@pytest.mark.parametrize(
    ("callback", "is_async"),
    [
        ("on_connection", False),
        ("onConnection", True),
        ("on_data", True),
        ("onData", False),
    ],
)
async def test_handler_exception_is_an_error_event_naming_the_callback(
    callback: str, is_async: bool, autojump_clock: trio.testing.MockClock
) -> None:
    """The raising callback is named (in the spelling the handler used) in the error."""
    log = EventRecorder()

    def record(conn: TCPConnection, event: TCPEvent) -> None:
        log.add(event)

    def sync_cb(conn: TCPConnection, event: TCPEvent) -> None:
        log.add(event)
        raise ValueError("callback bug")

    async def async_cb(conn: TCPConnection, event: TCPEvent) -> None:
        await trio.lowlevel.checkpoint()
        log.add(event)
        raise ValueError("callback bug")

    handler: dict[str, Callable[..., Any]] = {
        "onConnection": record,
        "on_data": record,
        "on_shutdown": record,
        "on_error": record,
        "on_terminate": record,
    }
    for spelling in (callback, _other_spelling(callback)):
        handler.pop(spelling, None)
    handler[callback] = async_cb if is_async else sync_cb
    peer = EventRecorder()
    with trio.fail_after(30):
        async with open_connection_pair(peer, handler, close_timeout=CLOSE_TIMEOUT) as pair:
            await pair.a.send(b"first")
            await log.wait_for("error")
            # The failing side closed in order: the peer sees close, and we can end ours.
            await peer.wait_for("close")
            await pair.a.shutdown()
            await pair.b.wait(10)
    assert_grammar(log.types, "failing side")
    assert_grammar(peer.types, "peer")
    assert end_of(log.types) == "error"
    assert end_of(peer.types) == "close"
    error = log.events[-2]
    assert [r.err_code for r in error.errors] == [ErrorCode.HANDLER_RAISED]
    record0 = error.errors[0]
    assert callback in record0.message
    assert "ValueError" in record0.message
    assert "callback bug" in record0.message
    assert record0.component_signature == "handler"
    assert record0.errCode == ErrorCode.HANDLER_RAISED
    assert record0 in pair.b.errors
    if callback.lower().endswith("data"):
        assert log.received == b"first"


def _other_spelling(name: str) -> str:
    pairs = {
        "on_connection": "onConnection",
        "on_data": "onData",
        "on_shutdown": "onShutdown",
        "on_error": "onError",
        "on_terminate": "onTerminate",
    }
    inverse = {v: k for k, v in pairs.items()}
    return pairs.get(name) or inverse[name]


@pytest.mark.parametrize("callback", ["on_error", "onTerminate"])
async def test_raising_in_the_last_callbacks_is_recorded_not_propagated(
    callback: str, autojump_clock: trio.testing.MockClock
) -> None:
    log = EventRecorder()

    def record(conn: TCPConnection, event: TCPEvent) -> None:
        log.add(event)

    async def boom(conn: TCPConnection, event: TCPEvent) -> None:
        log.add(event)
        await trio.lowlevel.checkpoint()
        raise RuntimeError("late bug")

    handler: dict[str, Callable[..., Any]] = {
        name: record for name in ("on_connection", "on_data", "on_shutdown", "on_error")
    }
    handler["onTerminate"] = record
    handler.pop(_other_spelling(callback), None)
    handler[callback] = boom
    with trio.fail_after(30):
        async with open_connection_pair(EventRecorder(), handler) as pair:
            await pair.a.send(b"x")
            await log.wait_for_bytes(1)
            if callback == "on_error":
                pair.a_stream.reset()
            else:
                await pair.a.shutdown()
            assert await pair.b.wait(5)
    assert log.types == [
        "connection",
        "data",
        "error" if callback == "on_error" else "close",
        "terminate",
    ]
    failures = [r for r in pair.b.errors if r.err_code == ErrorCode.HANDLER_RAISED]
    assert len(failures) == 1
    assert callback in failures[0].message
    assert "late bug" in failures[0].message


async def test_on_shutdown_raising_is_recorded_after_close(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """``close`` was already delivered, so the failure is recorded, not a second end event."""

    class Handler(EventRecorder):
        async def on_shutdown(self, conn: TCPConnection, event: TCPEvent) -> None:
            await EventRecorder.on_shutdown(self, conn, event)
            raise KeyError("late")

    rec, peer = Handler(), EventRecorder()
    with trio.fail_after(30):
        async with open_connection_pair(peer, rec, close_timeout=CLOSE_TIMEOUT) as pair:
            await pair.a.send(b"bye")
            await pair.a.shutdown()
            assert await pair.b.wait(10)
    assert rec.types == ["connection", "data", "close", "terminate"]
    assert any(
        r.err_code == ErrorCode.HANDLER_RAISED and "on_shutdown" in r.message for r in pair.b.errors
    )
    assert_grammar(peer.types)


@pytest.mark.parametrize("which", ["a", "b"])
@pytest.mark.parametrize("style", ["recorder", "events"])
async def test_reset_yields_error_on_both_ends(
    which: str, style: str, autojump_clock: trio.testing.MockClock
) -> None:
    side_a, side_b = Side(style), Side(style)
    with trio.fail_after(30):
        async with (
            open_connection_pair(side_a.handler(), side_b.handler()) as pair,
            trio.open_nursery() as nursery,
        ):
            for side, conn in ((side_a, pair.a), (side_b, pair.b)):
                if side.style == "events":
                    nursery.start_soon(side.consume, conn)
            await pair.a.send(b"abc")
            await side_b.log.wait_for_bytes(3)
            (pair.a_stream if which == "a" else pair.b_stream).reset()
            assert await pair.a.wait(5)
            assert await pair.b.wait(5)
            with pytest.raises(ConnectionClosedError):
                await pair.a.send(b"more")
    for side, conn in ((side_a, pair.a), (side_b, pair.b)):
        assert_grammar(side.log.types)
        assert end_of(side.log.types) == "error"
        records = side.log.events[-2].errors
        assert records[0].err_code == ErrorCode.CONNECTION_BROKEN
        assert "reset" in records[0].message
        assert records[0] in conn.errors
    assert side_b.log.received == b"abc"


@pytest.mark.parametrize("style", STYLES)
async def test_peer_fin_yields_close(style: str, autojump_clock: trio.testing.MockClock) -> None:
    """A raw peer sends data and FIN: the connection reports close, echoes, and closes too."""
    side = Side(style, echo=style != "sync")
    listener_handler = {"on_connection": lambda listener, event: side.handler()}
    with trio.fail_after(30):
        if style == "events":

            async def serve(conn: TCPConnection) -> None:
                side.log = EventRecorder()
                await side.consume(conn)

            handler: object = serve
        else:
            handler = listener_handler
        async with open_memory_listener(handler, close_timeout=CLOSE_TIMEOUT) as net:
            raw = await net.connect_stream(seed=1)
            await raw.send_all(b"ping " * 100)
            await raw.send_eof()
            echoed = bytearray()
            while chunk := await raw.receive_some():
                echoed += chunk
            await raw.aclose()
            net.listener.terminate()
    assert_grammar(side.log.types)
    assert end_of(side.log.types) == "close"
    assert side.log.received == b"ping " * 100
    assert bytes(echoed) == (b"ping " * 100 if side.echo else b"")
    # Every event names the raw client (memory clients get made-up ports).
    assert {(event.ip, event.port) for event in side.log.events} == {
        ("127.0.0.1", side.log.events[0].port)
    }


async def test_cancelled_scope_still_delivers_close_and_terminate(
    autojump_clock: trio.testing.MockClock,
) -> None:
    ra, rb = EventRecorder(), EventRecorder(echo=True)
    with trio.fail_after(30):
        with trio.move_on_after(1.0) as scope:
            async with open_connection_pair(ra, rb, close_timeout=CLOSE_TIMEOUT) as pair:
                await pair.a.send(b"x" * 10)
                await ra.wait_for_bytes(10)
                await trio.sleep_forever()
    assert scope.cancelled_caught
    for rec in (ra, rb):
        assert rec.types == ["connection", "data", "close", "terminate"]
        assert rec.received == b"x" * 10
    assert ErrorCode.CLOSE_TIMEOUT not in codes(pair.a) | codes(pair.b)


async def test_terminate_mid_transfer_flushes_what_send_accepted(
    autojump_clock: trio.testing.MockClock,
) -> None:
    ra, rb = EventRecorder(), EventRecorder()
    accepted = 0
    refused = False
    payload = bytes(range(256)) * 4000  # ~1 MiB, sixteen times the pipe's capacity
    with trio.fail_after(30):
        async with open_connection_pair(ra, rb, close_timeout=CLOSE_TIMEOUT) as pair:
            pair.b_stream.receive_delay = 0.001

            async def sender() -> None:
                nonlocal accepted, refused
                try:
                    for start in range(0, len(payload), 10_000):
                        await pair.a.send(payload[start : start + 10_000])
                        accepted = start + 10_000
                except ConnectionClosedError:
                    refused = True

            async with trio.open_nursery() as nursery:
                nursery.start_soon(sender)
                await rb.wait_for_bytes(300_000)
                pair.a.terminate()
                pair.a.terminate()  # idempotent
            assert await pair.b.wait(5)
    assert refused  # the sends after terminate() were refused ...
    assert 300_000 <= accepted < len(payload)
    assert rb.received == payload[:accepted]  # ... and all accepted ones were delivered
    assert ra.types == ["connection", "close", "terminate"]
    assert rb.types[-2:] == ["close", "terminate"]
    assert_grammar(rb.types)


async def test_vanished_peer_is_given_up_after_close_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    ra, rb = EventRecorder(), EventRecorder()
    with trio.fail_after(30):
        async with open_connection_pair(ra, rb, close_timeout=CLOSE_TIMEOUT) as pair:
            await pair.a.send(b"before")
            await rb.wait_for_bytes(6)
            pair.b_stream.vanish()
            await pair.a.send(b"swallowed")
            assert not await pair.b.wait(3.0)  # nothing tells B anything
            start = trio.current_time()
            # Both give up at once.  (Had one closed hard first, the memory double would let
            # that cross the vanished link: test_testing.py::test_vanish_hides_a_later_close.)
            pair.a.terminate()
            pair.b.terminate()
            assert await pair.a.wait(CLOSE_TIMEOUT + 0.01)
            assert await pair.b.wait(CLOSE_TIMEOUT + 0.01)
        elapsed = trio.current_time() - start
    assert CLOSE_TIMEOUT <= elapsed <= CLOSE_TIMEOUT + 0.01
    assert rb.received == b"before"
    for rec, conn in ((ra, pair.a), (rb, pair.b)):
        assert_grammar(rec.types)
        assert ErrorCode.CLOSE_TIMEOUT in codes(conn)


async def test_stalled_consumer_bounds_what_is_buffered(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """events() nobody reads: the reader stops, the pipe fills, the sender waits."""
    with trio.fail_after(60):
        async with open_connection_pair(EventRecorder(), None) as pair:
            sent = 0
            with trio.move_on_after(10):
                while True:
                    await pair.a.send(b"z" * 65536)
                    sent += 65536
            bound = (EVENT_BUFFER + 2) * RECEIVE_SIZE + 64 * 1024
            assert sent <= bound
            assert pair.b_stream.bytes_received <= EVENT_BUFFER * RECEIVE_SIZE + RECEIVE_SIZE
            # Now read everything: order and content intact.
            got = bytearray()
            events = pair.b.events()
            pair.a.terminate()
            async for event in events:
                if event.type == "data":
                    assert event.data is not None
                    got += event.data
    assert bytes(got) == b"z" * sent


async def test_events_style_cannot_be_used_with_a_handler() -> None:
    with trio.fail_after(10):
        async with open_connection_pair(EventRecorder(), EventRecorder()) as pair:
            with pytest.raises(LocalProtocolError):
                pair.a.events()


# -- listeners: one connection's failure does not disturb the others ----------------------


async def _echo_round(stream: MemoryTCPStream, message: bytes) -> bytes:
    await stream.send_all(message)
    got = bytearray()
    while len(got) < len(message):
        chunk = await stream.receive_some()
        if not chunk:
            break
        got += chunk
    return bytes(got)


@pytest.mark.parametrize("seed", range(6))
async def test_listener_raising_connection_handler_spares_the_others(
    seed: int, autojump_clock: trio.testing.MockClock
) -> None:
    rng = random.Random(seed)
    bad_index = rng.randrange(4)
    bad_on = rng.randint(1, 3)

    class ServerSide(EventRecorder):
        def __init__(self, bad: bool) -> None:
            super().__init__(echo=True)
            self.bad = bad
            self.conn: TCPConnection | None = None
            self.chunks = 0

        async def on_data(self, conn: TCPConnection, event: TCPEvent) -> None:
            self.conn = conn
            self.chunks += 1
            if self.bad and self.chunks == bad_on:
                self.events.append(event)
                raise OSError(f"server bug on chunk {bad_on}")
            await EventRecorder.on_data(self, conn, event)

    servers: list[ServerSide] = []

    class ListenerHandler:
        def on_connection(self, listener: Any, event: TCPEvent) -> ServerSide:
            server = ServerSide(bad=len(servers) == bad_index)
            servers.append(server)
            return server

    with trio.fail_after(60):
        async with open_memory_listener(ListenerHandler(), close_timeout=CLOSE_TIMEOUT) as net:
            clients = []
            for i in range(4):
                stream = await net.connect_stream(seed=seed * 10 + i)
                stream.max_chunk = rng.choice([None, 5, 50])
                clients.append(stream)
            await trio.testing.wait_all_tasks_blocked()
            replies: dict[int, list[bytes]] = {i: [] for i in range(4)}
            for round_ in range(5):
                for i, stream in enumerate(clients):
                    message = f"round {round_} client {i} ".encode() * rng.randint(1, 20)
                    try:
                        replies[i].append(await _echo_round(stream, message))
                    except trio.BrokenResourceError:
                        replies[i].append(b"<reset>")
                    if i != bad_index:
                        assert replies[i][-1] == message  # the others keep echoing
            bad_server = servers[bad_index]
            assert bad_server.conn is not None
            assert await bad_server.conn.wait(5)
            for i, stream in enumerate(clients):
                if i != bad_index:
                    await stream.send_eof()
                    assert await stream.receive_some() == b""
                await stream.aclose()
            net.listener.terminate()
    assert len(servers) == 4
    for i, server in enumerate(servers):
        assert_grammar(server.types, f"server {i}")
        assert server.conn is not None
        if i == bad_index:
            assert end_of(server.types) == "error"
            (record,) = [r for r in server.conn.errors if r.err_code == ErrorCode.HANDLER_RAISED]
            assert "on_data" in record.message
            assert "server bug" in record.message
            assert server.events[-2].errors == (record,)
        else:
            assert end_of(server.types) == "close"
            assert server.conn.errors == []
    # A connection's failure is the connection's, not the listener's.
    assert net.listener.errors == []


async def test_listener_on_connection_raising_is_a_listener_error(
    autojump_clock: trio.testing.MockClock,
) -> None:
    accepted: list[EventRecorder] = []
    listener_events: list[TCPEvent] = []

    class ListenerHandler:
        def __init__(self) -> None:
            self.calls = 0

        async def onConnection(self, listener: Any, event: TCPEvent) -> object:
            self.calls += 1
            if self.calls == 2:
                raise RuntimeError("refusing by accident")
            if self.calls == 3:
                return 42  # not a handler at all
            rec = EventRecorder(echo=True)
            accepted.append(rec)
            return rec

        def onError(self, listener: Any, event: TCPEvent) -> None:
            listener_events.append(event)

    with trio.fail_after(30):
        async with open_memory_listener(ListenerHandler(), close_timeout=CLOSE_TIMEOUT) as net:
            streams = [await net.connect_stream() for _ in range(4)]
            for i, stream in enumerate(streams):
                try:
                    reply = await _echo_round(stream, b"hello")
                except trio.BrokenResourceError:
                    reply = b""
                assert (reply == b"hello") == (i in (0, 3)), i
            errors = net.listener.errors
            for stream in streams:
                await stream.aclose()
    assert len(accepted) == 2
    assert [r.err_code for r in errors] == [ErrorCode.HANDLER_RAISED] * 2
    assert "onConnection" in errors[0].message
    assert "refusing by accident" in errors[0].message
    assert "on_connection's result" in errors[1].message
    assert [e.type for e in listener_events] == ["error", "error"]
    assert [e.errors for e in listener_events] == [(errors[0],), (errors[1],)]
    for rec in accepted:
        assert_grammar(rec.types)


async def test_listener_serve_raising_spares_the_others(
    autojump_clock: trio.testing.MockClock,
) -> None:
    conns: list[TCPConnection] = []
    seen: dict[int, list[str]] = {}

    async def serve(conn: TCPConnection) -> None:
        index = len(conns)
        conns.append(conn)
        seen[index] = []
        async for event in conn.events():
            seen[index].append(event.type.value)
            if event.type == "data":
                assert event.data is not None
                if index == 1 and b"boom" in event.data:
                    raise ZeroDivisionError("serve bug")
                await conn.send(event.data)

    with trio.fail_after(30):
        async with open_memory_listener(serve, close_timeout=CLOSE_TIMEOUT) as net:
            streams = [await net.connect_stream() for _ in range(3)]
            for stream in streams:
                assert await _echo_round(stream, b"hi") == b"hi"
            assert await _echo_round(streams[1], b"boom") == b""  # closed on us
            assert await conns[1].wait(5)
            for i in (0, 2):
                assert await _echo_round(streams[i], b"still there") == b"still there"
            net.listener.terminate()
            for stream in streams:
                while await stream.receive_some():
                    pass
                await stream.aclose()
    assert conns[1].errors[0].err_code == ErrorCode.HANDLER_RAISED
    assert "serve" in conns[1].errors[0].message
    assert "ZeroDivisionError" in conns[1].errors[0].message
    assert ErrorCode.HANDLER_RAISED not in codes(conns[0]) | codes(conns[2])
    assert net.listener.errors == []
    # The serve task stopped reading at the exception; the others saw the whole sequence.
    assert seen[0][0] == "connection"
    assert seen[0][-2:] == ["close", "terminate"]
    assert seen[2][0] == "connection"
    assert seen[2][-2:] == ["close", "terminate"]


# -- regressions: races on the close path ----------------------------------------------


@pytest.mark.parametrize("what", ["data", "eof"])
async def test_terminate_does_not_cut_a_starting_callback(
    what: str, autojump_clock: trio.testing.MockClock
) -> None:
    """terminate(): "a callback running now is allowed to finish" — also one about to run.

    The race: B's reader has the data (or FIN) in hand but has not called the callback
    yet when terminate() comes; the callback must not be cancelled at its first await.
    """
    log: list[str] = []

    class Handler:
        async def on_data(self, conn: TCPConnection, event: TCPEvent) -> None:
            log.append("data>")
            await trio.lowlevel.checkpoint()
            log.append("<data")

        async def on_shutdown(self, conn: TCPConnection, event: TCPEvent) -> None:
            log.append("close>")
            await trio.lowlevel.checkpoint()
            log.append("<close")

    with trio.fail_after(30):
        async with open_connection_pair(EventRecorder(), Handler()) as pair:
            await trio.testing.wait_all_tasks_blocked()
            if what == "data":
                await pair.a.send(b"x")  # wakes B's reader ...
            else:
                await pair.a.shutdown()
            pair.b.terminate()  # ... which has not delivered yet
            assert await pair.b.wait(5)
    # Every callback that started also finished.
    assert log.count("data>") == log.count("<data")
    assert log.count("close>") == log.count("<close") == 1


async def test_events_close_survives_terminate_while_the_channel_is_full(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """close waits for room in the events() channel when terminate() comes: not lost."""
    with trio.fail_after(30):
        async with open_connection_pair(EventRecorder(), None) as pair:
            pair.b_stream.max_chunk = 1
            # connection + 15 data events fill the 16-slot channel; close waits for room.
            await pair.a.send(b"x" * (EVENT_BUFFER - 1))
            await pair.a.shutdown()
            await trio.testing.wait_all_tasks_blocked()
            pair.b.terminate()
            types = [event.type.value async for event in pair.b.events()]
    assert types.count("data") == EVENT_BUFFER - 1
    assert_grammar(types)
    assert types[-2] == "close"


async def test_events_close_survives_cancellation_while_the_channel_is_full(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The same, when the enclosing scope is cancelled instead."""
    types: list[str] = []
    with trio.fail_after(30):
        with trio.move_on_after(1.0):
            async with open_connection_pair(EventRecorder(), None) as pair:

                async def late_consumer() -> None:
                    # Keeps consuming through the cancellation, to see every event.
                    with trio.CancelScope(shield=True):
                        await trio.sleep(2.0)
                        async for event in pair.b.events():
                            types.append(event.type.value)

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(late_consumer)
                    pair.b_stream.max_chunk = 1
                    await pair.a.send(b"x" * (EVENT_BUFFER - 1))
                    await pair.a.shutdown()
                    await trio.sleep_forever()
    assert types.count("data") == EVENT_BUFFER - 1
    assert_grammar(types)
    assert types[-2] == "close"


async def test_orderly_end_records_no_error(autojump_clock: trio.testing.MockClock) -> None:
    """shutdown() then the wind-down's FIN: sending EOF twice is not a failure."""
    ra, rb = EventRecorder(), EventRecorder(echo=True)
    with trio.fail_after(30):
        async with open_connection_pair(ra, rb) as pair:
            await pair.a.send(b"hello")
            await pair.a.shutdown()
            assert await pair.a.wait(5)
            assert await pair.b.wait(5)
    assert ra.types == rb.types == ["connection", "data", "close", "terminate"]
    assert ra.received == rb.received == b"hello"
    assert pair.b.errors == []
    assert pair.a.errors == []


async def test_terminate_during_a_large_send_to_an_echoing_peer(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The close must drain while it waits for the in-flight send, or both sides block."""
    ra, rb = EventRecorder(), EventRecorder(echo=True)
    payload = b"y" * 1_000_000
    completed = False
    with trio.fail_after(60):
        async with open_connection_pair(ra, rb, close_timeout=10) as pair:

            async def sender() -> None:
                # This send is in flight when terminate() comes: it may complete or be
                # refused, but the end must be orderly either way.
                nonlocal completed
                with contextlib.suppress(ConnectionClosedError):
                    await pair.a.send(payload)
                    completed = True

            async with trio.open_nursery() as nursery:
                nursery.start_soon(sender)
                await rb.wait_for_bytes(100_000)
                start = trio.current_time()
                pair.a.terminate()
                assert await pair.a.wait(20)
                assert await pair.b.wait(20)
                elapsed = trio.current_time() - start
    assert end_of(ra.types) == "close"
    assert end_of(rb.types) == "close"
    assert ErrorCode.CLOSE_TIMEOUT not in codes(pair.a)
    assert elapsed < 10
    assert payload.startswith(rb.received)
    if completed:
        assert rb.received == payload


# -- known bugs --------------------------------------------------------------------------


async def test_events_close_survives_a_consumer_slower_than_close_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The consumer is busy for longer than close_timeout after terminate().

    Nothing can be delivered while it is busy, but when it comes back the sequence must
    still be whole: data..., close (or error), terminate.
    """
    with trio.fail_after(30):
        async with open_connection_pair(EventRecorder(), None, close_timeout=1.0) as pair:
            pair.b_stream.max_chunk = 1
            await pair.a.send(b"x" * 40)  # more than the channel holds
            await trio.testing.wait_all_tasks_blocked()
            pair.b.terminate()
            await trio.sleep(1.5)  # busy elsewhere; the release budget is still running
            types = [event.type.value async for event in pair.b.events()]
    assert ErrorCode.CLOSE_TIMEOUT in codes(pair.b)
    assert_grammar(types)  # fails: [connection, data x 15, terminate]
