"""The TCP event sequence under faults, over trionet.testing's memory streams.

Every connection, on both ends and whatever happens to it, must deliver

    connection · data* · (close | error) · terminate        (or  error · terminate)

with exactly one ``terminate``, always last.  ``test_schedule`` drives many seeded random
schedules (handler style, sizes, fragmentation, delays, and one fault at a random point)
and checks that grammar, plus the byte stream wherever no fault destroyed data.  The other
tests pin down single faults deterministically.

Everything runs on trio's ``MockClock`` with ``autojump_threshold=0``: timeouts and delays
cost no real time, and a deadlock shows up as a ``TooSlowError`` instead of a hang.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import pytest
import trio
import trio.testing

from trionet import (
    ConnectionClosedError,
    ErrorCode,
    LocalProtocolError,
    TCPConnection,
    TCPEvent,
    TCPEventType,
)
from trionet._connection import EVENT_BUFFER
from trionet._transport import RECEIVE_SIZE
from trionet.testing import (
    EventRecorder,
    MemoryTCPStream,
    open_connection_pair,
    open_memory_listener,
)
from trionet.testing._memory import DEFAULT_CAPACITY

CLOSE_TIMEOUT = 1.0
# How long (virtual seconds) a schedule waits for things to settle before it steps in.
SETTLE = 30.0
# Soak runs: TRIONET_SCHEDULE_SALT=1,2,... replays every seed under other task interleavings.
SALT = int(os.environ.get("TRIONET_SCHEDULE_SALT", "0"))
# Generous bound in *virtual* seconds: with the autojump clock a deadlock jumps straight here.
LIMIT = 600.0

_LETTER = {"connection": "C", "data": "D", "close": "L", "error": "E", "terminate": "T"}
_GRAMMAR = re.compile(r"CD*[LE]T|ET")


def seed_trio_scheduler(seed: int) -> None:
    """Make trio's choice among ready tasks repeatable, so a failing seed fails again.

    trio deliberately varies the order in which ready tasks run; the assertions below must
    hold for every order, and seeding its generator makes each order reproducible.
    """
    rng = getattr(getattr(trio, "_core", None), "_run", None)
    rng = getattr(rng, "_r", None)
    if isinstance(rng, random.Random):
        rng.seed(seed * 1_000_003 + SALT)


def assert_grammar(types: list[str], who: str = "") -> None:
    """``types`` is ``connection · data* · (close|error) · terminate`` or ``error · terminate``."""
    word = "".join(_LETTER[t] for t in types)
    assert _GRAMMAR.fullmatch(word), f"{who}: bad event sequence {types}"
    assert types.count("terminate") == 1
    assert types[-1] == "terminate"


def assert_event_shapes(events: list[TCPEvent], peer: tuple[str, int], who: str = "") -> None:
    """Every event is well formed and names the peer."""
    for event in events:
        assert isinstance(event.type, TCPEventType)
        assert (event.ip, event.port) == peer, who
        if event.type == "data":
            assert isinstance(event.data, bytes)
            assert event.data, f"{who}: empty data event"
        else:
            assert event.data is None, who
        if event.type == "error":
            assert event.errors, f"{who}: error event without error records"
        else:
            assert event.errors == (), who


def end_of(types: list[str]) -> str:
    """The event that ended the connection: ``close`` or ``error``."""
    return types[-2]


def codes(conn: TCPConnection) -> set[int]:
    return {record.err_code for record in conn.errors}


Recorded = EventRecorder


async def wait_bytes_or_end(log: Recorded, size: int) -> None:
    """Wait until ``log`` saw ``size`` bytes, or its connection ended (close/error)."""
    async with trio.open_nursery() as nursery:

        async def first(fn: Callable[..., Any], *args: Any) -> None:
            await fn(*args)
            nursery.cancel_scope.cancel()

        nursery.start_soon(first, log.wait_for_bytes, size)
        nursery.start_soon(first, log.wait_for, "close")
        nursery.start_soon(first, log.wait_for, "error")


# -- handler styles ----------------------------------------------------------------------

STYLES = ("recorder", "sync", "async", "mapping", "events")
# Styles whose on_data can be made to raise, and the callback name each one uses.
DATA_CALLBACK_NAME = {"sync": "onData", "async": "on_data", "mapping": "onData"}


@attrs.define
class Side:
    """One end of a schedule: how it handles events, and what it saw."""

    style: str
    echo: bool = False
    raise_on: int | None = None  # on_data raises on this (1-based) data event
    slow: float = 0.0  # virtual seconds each data event takes to handle (async styles)
    shield_consumer: bool = False  # events(): keep consuming through a cancellation
    log: Any = None
    paused: trio.Event | None = None  # while set and not yet fired, data handling waits
    raised: bool = False
    echo_failed: bool = False
    cut: int = 0  # async callbacks that trionet cancelled part-way

    @contextlib.contextmanager
    def callback(self) -> Iterator[None]:
        """Count a callback cancelled part-way (allowed only when the scope is cancelled
        or the close timeout ran out)."""
        try:
            yield
        except trio.Cancelled:
            self.cut += 1
            raise

    def handler(self) -> object | None:
        """Build the handler for this side (``None`` for the events() style)."""
        if self.style == "recorder":
            self.log = EventRecorder(echo=self.echo)
            return self.log
        self.log = EventRecorder()
        if self.style == "sync":
            return _SyncCamelHandler(self)
        if self.style == "async":
            return _AsyncSnakeHandler(self)
        if self.style == "mapping":
            return _mapping_handler(self)
        assert self.style == "events"
        return None

    def got_data(self, event: TCPEvent) -> None:
        """Record a data event; raise if this is the chunk that must fail."""
        self.log.add(event)
        if (
            self.raise_on is not None
            and len([e for e in self.log.events if e.type == "data"]) == self.raise_on
        ):
            self.raised = True
            raise RuntimeError(f"handler fails on data event {self.raise_on}")

    async def echo_back(self, conn: TCPConnection, event: TCPEvent) -> None:
        if self.paused is not None:
            await self.paused.wait()
        if self.slow:
            await trio.sleep(self.slow)
        if self.echo and not self.echo_failed:
            assert event.data is not None
            try:
                await conn.send(event.data)
            except ConnectionClosedError:
                self.echo_failed = True

    async def consume(self, conn: TCPConnection) -> None:
        """The events() style: iterate until the channel ends after ``terminate``."""
        shield = trio.CancelScope(shield=self.shield_consumer, deadline=trio.current_time() + LIMIT)
        with shield:
            async for event in conn.events():
                self.log.add(event)
                if event.type == "data":
                    await self.echo_back(conn, event)


class _SyncCamelHandler:
    """4D spelling, plain functions; cannot echo (send is async)."""

    def __init__(self, side: Side) -> None:
        self.side = side

    def onConnection(self, conn: TCPConnection, event: TCPEvent) -> None:
        self.side.log.add(event)

    def onData(self, conn: TCPConnection, event: TCPEvent) -> None:
        self.side.got_data(event)

    def onShutdown(self, conn: TCPConnection, event: TCPEvent) -> None:
        self.side.log.add(event)

    def onError(self, conn: TCPConnection, event: TCPEvent) -> None:
        self.side.log.add(event)

    def onTerminate(self, conn: TCPConnection, event: TCPEvent) -> None:
        self.side.log.add(event)


class _AsyncSnakeHandler:
    """Python spelling, ``async def`` callbacks that may echo and be slow."""

    def __init__(self, side: Side) -> None:
        self.side = side

    async def on_connection(self, conn: TCPConnection, event: TCPEvent) -> None:
        with self.side.callback():
            await trio.lowlevel.checkpoint()
            self.side.log.add(event)

    async def on_data(self, conn: TCPConnection, event: TCPEvent) -> None:
        with self.side.callback():
            self.side.got_data(event)
            await self.side.echo_back(conn, event)

    async def on_shutdown(self, conn: TCPConnection, event: TCPEvent) -> None:
        # Records on entry: under cancellation the callback may be cut after that.
        with self.side.callback():
            self.side.log.add(event)
            await trio.lowlevel.checkpoint()

    async def on_error(self, conn: TCPConnection, event: TCPEvent) -> None:
        with self.side.callback():
            self.side.log.add(event)
            await trio.lowlevel.checkpoint()

    async def on_terminate(self, conn: TCPConnection, event: TCPEvent) -> None:
        with self.side.callback():
            await trio.lowlevel.checkpoint()
            self.side.log.add(event)


def _mapping_handler(side: Side) -> dict[str, Callable[..., Any]]:
    """A 4D options object: a mapping mixing spellings and sync/async callables."""

    async def on_data(conn: TCPConnection, event: TCPEvent) -> None:
        with side.callback():
            side.got_data(event)
            await side.echo_back(conn, event)

    return {
        "onConnection": lambda conn, event: side.log.add(event),
        "onData": on_data,
        "on_shutdown": lambda conn, event: side.log.add(event),
        "onError": lambda conn, event: side.log.add(event),
        "on_terminate": lambda conn, event: side.log.add(event),
    }


# -- schedules ---------------------------------------------------------------------------

FAULTS = (
    "none",
    "shutdown_b",
    "raw_eof",
    "reset",
    "cancel",
    "raise",
    "terminate_a",
    "terminate_b",
    "vanish",
    "stall",
    "pause_consumer",
)
ORDERLY = frozenset({"none", "shutdown_b", "raw_eof", "terminate_a", "stall", "pause_consumer"})


@attrs.define
class Plan:
    """Everything a seed decides."""

    seed: int
    fault: str
    a: Side
    b: Side
    payload: bytes
    pieces: list[int]
    ending: str  # what A does once everything is sent: shutdown / terminate / leave
    at_bytes: int  # fault point, in bytes B has received
    max_chunk_a: int | None
    max_chunk_b: int | None
    send_delay: float
    receive_delay: float
    cancel_after: float
    stall_for: float
    raiser: str  # which side raises for the "raise" fault
    tight: float | None = None  # a close timeout short enough to run out, or None

    @property
    def close_timeout(self) -> float:
        """Short where the peer vanishes or the plan is tight; elsewhere longer than any
        slow consumer needs.

        An orderly end that outlasts the close timeout is closed hard, by design: only
        the grammar is checked on tight plans.
        """
        if self.tight is not None:
            return self.tight
        return CLOSE_TIMEOUT if self.fault == "vanish" else 60.0

    @classmethod
    def draw(cls, seed: int) -> Plan:
        rng = random.Random(seed)
        fault = FAULTS[seed % len(FAULTS)]  # every fault gets its share of the seeds
        raiser = rng.choice("ab")
        styles_a, styles_b = list(STYLES), list(STYLES)
        if fault == "raise":
            raising = [s for s in STYLES if s in DATA_CALLBACK_NAME]
            if raiser == "a":
                styles_a = raising
            else:
                styles_b = raising
        if fault == "pause_consumer":
            styles_b = ["async", "mapping", "events"]  # the styles that can wait
        a = Side(rng.choice(styles_a))
        b = Side(rng.choice(styles_b))
        # B echoes (so A has data too) unless it half-closes or cannot (sync callbacks).
        b.echo = b.style != "sync" and fault != "shutdown_b" and rng.random() < 0.6
        if fault == "raise" and raiser == "a":
            b.echo = b.style != "sync"  # A's on_data only runs on echoed data

        size = rng.choice([0, 1, 17, 1000, 40_000, 150_000, 300_000])
        if fault not in ("none", "cancel", "raw_eof"):
            size = max(size, 2)  # these faults strike mid-transfer
        payload = rng.randbytes(size)
        pieces: list[int] = []
        left = size
        while left:
            piece = min(left, rng.choice([1, 100, 4096, 65536, 200_000]))
            pieces.append(piece)
            left -= piece

        def chunk() -> int | None:
            # Keep the number of data events bounded (fragmentation of big payloads is coarse).
            if size <= 2000:
                return rng.choice([None, 1, 3, 64])
            return rng.choice([None, 1000, 8192, 50_000])

        for side in (a, b):
            if side.style in ("async", "mapping", "events") and rng.random() < 0.3:
                side.slow = rng.choice([0.0005, 0.003])
            side.shield_consumer = fault == "cancel"
        endings = ["shutdown", "terminate"]
        if "events" not in (a.style, b.style):
            endings.append("leave")  # events() consumers must see terminate inside the block
        ending = rng.choice(endings)
        if fault == "terminate_a":
            ending = "shutdown"
        timed = fault == "cancel" or rng.random() < 0.3
        send_delay = rng.choice([0.0, 0.001, 0.004]) if timed else 0.0
        receive_delay = rng.choice([0.0, 0.001, 0.002]) if timed else 0.0
        plan = cls(
            seed=seed,
            fault=fault,
            a=a,
            b=b,
            payload=payload,
            pieces=pieces,
            ending=ending,
            at_bytes=rng.randrange(1, size) if size > 1 else 1,
            max_chunk_a=chunk(),
            max_chunk_b=chunk(),
            send_delay=send_delay,
            receive_delay=receive_delay,
            cancel_after=rng.uniform(0.0, 0.002 + 0.002 * len(pieces)),
            stall_for=rng.choice([0.001, 0.5, 3.0]),
            raiser=raiser,
        )
        if fault == "raise":
            target = a if raiser == "a" else b
            target.raise_on = rng.randint(1, 4)
        if fault != "vanish" and rng.random() < 0.25:
            plan.tight = rng.choice([0.005, 0.05, 0.3])
        return plan


@attrs.define
class Outcome:
    """What happened, for the assertions."""

    accepted: int = 0  # bytes of payload whose send() returned normally
    send_refused: bool = False  # a send() raised ConnectionClosedError
    fault_fired: bool = False
    terminated_at: float | None = None
    ended_at: float | None = None


async def run_schedule(plan: Plan) -> tuple[Outcome, TCPConnection, TCPConnection, Any]:
    """Run one schedule to the end; return what the assertions need."""
    out = Outcome()
    ha, hb = plan.a.handler(), plan.b.handler()
    pair_ref: list[Any] = []
    with trio.fail_after(LIMIT):
        with trio.move_on_after(plan.cancel_after if plan.fault == "cancel" else LIMIT * 2):
            async with open_connection_pair(
                ha, hb, seed=plan.seed, close_timeout=plan.close_timeout
            ) as pair:
                pair_ref.append(pair)
                for stream, max_chunk in (
                    (pair.a_stream, plan.max_chunk_a),
                    (pair.b_stream, plan.max_chunk_b),
                ):
                    stream.max_chunk = max_chunk
                    stream.send_delay = plan.send_delay
                    stream.receive_delay = plan.receive_delay
                sender_done = trio.Event()
                async with trio.open_nursery() as nursery:
                    for side, conn in ((plan.a, pair.a), (plan.b, pair.b)):
                        if side.style == "events":
                            nursery.start_soon(side.consume, conn)
                    nursery.start_soon(_send_all, plan, pair, out, sender_done)
                    nursery.start_soon(_inject, plan, pair, out)
                    # A user gives up on a sender that makes no progress (a vanished peer
                    # with full buffers blocks it, as TCP would) ...
                    with trio.move_on_after(SETTLE):
                        await sender_done.wait()
                    if plan.ending != "leave" or not sender_done.is_set():
                        # ... and on connections that do not end by themselves.
                        with trio.move_on_after(SETTLE):
                            await pair.a.wait()
                            await pair.b.wait()
                        out.terminated_at = trio.current_time()
                        pair.a.terminate()
                        pair.b.terminate()
                # Leaving the block (after the consumers are done) ends what is left.
                if out.terminated_at is None:
                    out.terminated_at = trio.current_time()
    out.ended_at = trio.current_time()
    return out, pair_ref[0].a, pair_ref[0].b, pair_ref[0]


async def _send_all(plan: Plan, pair: Any, out: Outcome, done: trio.Event) -> None:
    try:
        offset = 0
        for piece in plan.pieces:
            await pair.a.send(plan.payload[offset : offset + piece])
            offset += piece
            out.accepted = offset
        if plan.fault == "raw_eof":
            # Behind A's back: the raw stream half-closes; A's connection does not know.
            await pair.a_stream.send_eof()
        elif plan.ending == "shutdown":
            await pair.a.shutdown()
        elif plan.ending == "terminate":
            pair.a.terminate()
    except ConnectionClosedError:
        out.send_refused = True
    finally:
        done.set()


async def _inject(plan: Plan, pair: Any, out: Outcome) -> None:
    """Strike the schedule's fault once B has received ``at_bytes`` bytes."""
    if plan.fault in ("none", "raise", "cancel", "raw_eof"):
        return
    await wait_bytes_or_end(plan.b.log, plan.at_bytes)
    out.fault_fired = True
    if plan.fault == "reset":
        random.Random(plan.seed).choice([pair.a_stream, pair.b_stream]).reset()
    elif plan.fault == "shutdown_b":
        await pair.b.shutdown()
    elif plan.fault == "terminate_a":
        pair.a.terminate()
    elif plan.fault == "terminate_b":
        pair.b.terminate()
    elif plan.fault == "vanish":
        random.Random(plan.seed).choice([pair.a_stream, pair.b_stream]).vanish()
    elif plan.fault == "stall":
        pair.b_stream.stall()
        read_then = pair.b_stream.bytes_received
        await trio.sleep(plan.stall_for)
        # B's reader takes at most the chunk it was already waiting for, and A cannot have
        # completed sends beyond what the pipe holds.
        assert pair.b_stream.bytes_received - read_then <= RECEIVE_SIZE
        assert pair.a_stream.bytes_sent <= pair.b_stream.bytes_received + DEFAULT_CAPACITY
        pair.b_stream.resume()
    elif plan.fault == "pause_consumer":
        plan.b.paused = trio.Event()
        read_then = pair.b_stream.bytes_received
        await trio.sleep(plan.stall_for)
        # Backpressure: the paused consumer holds the network task (handler style) or
        # lets at most the channel fill (events style); either way B's reads stop.
        bound = (EVENT_BUFFER + 2) * RECEIVE_SIZE
        assert pair.b_stream.bytes_received - read_then <= bound
        plan.b.paused.set()


@pytest.mark.parametrize("seed", range(400))
async def test_schedule(seed: int, autojump_clock: trio.testing.MockClock) -> None:
    seed_trio_scheduler(seed)
    plan = Plan.draw(seed)
    out, a, b, pair = await run_schedule(plan)
    logs = {"a": plan.a.log, "b": plan.b.log}
    conns = {"a": a, "b": b}
    peers = {"a": pair.a_stream.remote_address, "b": pair.b_stream.remote_address}
    where = (
        f"seed={seed} fault={plan.fault} styles={plan.a.style}/{plan.b.style} "
        f"ending={plan.ending} tight={plan.tight}"
    )

    # The grammar, for every connection on both ends, whatever happened.
    for name in "ab":
        assert_grammar(logs[name].types, f"{where} side {name}")
        assert_event_shapes(logs[name].events, peers[name], f"{where} side {name}")
        assert conns[name].closed
        # An error event's records are among the connection's errors.
        for event in logs[name].events:
            if event.type == "error":
                assert set(event.errors) <= set(conns[name].errors)

    # No fault ever reorders or corrupts bytes: what arrived is a prefix of what was sent.
    received_b, received_a = logs["b"].received, logs["a"].received
    assert plan.payload.startswith(received_b), where
    assert plan.payload.startswith(received_a), where
    if not plan.b.echo:
        assert received_a == b""

    if plan.tight is not None:
        return  # the close timeout may have cut anything short: the grammar is what holds

    # A callback that started runs to its end, unless the scope was cancelled or the close
    # timeout ran out (the vanished peer).
    if plan.fault not in ("cancel", "vanish"):
        assert plan.a.cut == plan.b.cut == 0, where

    types_a, types_b = logs["a"].types, logs["b"].types
    if plan.fault in ORDERLY:
        # Whoever ends it, an orderly end is no failure.
        assert conns["a"].errors == [], where
        assert conns["b"].errors == [], where
    if plan.fault in ORDERLY and plan.ending != "leave":
        assert "error" not in types_a + types_b, where
        assert end_of(types_a) == end_of(types_b) == "close", where
        if plan.fault in ("terminate_a", "shutdown_b"):
            # What send() accepted was flushed before FIN; nothing else was.
            assert received_b == plan.payload[: out.accepted], where
        else:
            assert not out.send_refused, where
            assert received_b == plan.payload, where
        if plan.b.echo and plan.fault != "terminate_a" and plan.ending == "shutdown":
            assert received_a == received_b, where

    # B saw only part of the payload: it never got A's FIN, so it was still reading when
    # the fault struck (and had sent no FIN of its own).
    b_was_reading = len(received_b) < len(plan.payload)

    if plan.fault == "reset":
        assert out.fault_fired
        # Unless we were already ending it ourselves: A after its terminate(), and both
        # when the block is left right after the fault (then close and the reset race).
        expect_error = []
        if b_was_reading and plan.ending != "leave":
            expect_error.append("b")
        if b_was_reading and plan.ending == "shutdown":
            expect_error.append("a")
        for name in expect_error:
            assert end_of(logs[name].types) == "error", f"{where} side {name}"
            broken = logs[name].events[-2].errors
            # The transport's record; a callback whose send() failed adds its own.
            assert any(
                r.component_signature in ("tcp", "os")
                and (r.err_code == ErrorCode.CONNECTION_BROKEN or r.err_code > 0)
                for r in broken
            ), f"{where} side {name}: {broken}"

    if plan.fault == "raise":
        raiser = plan.a if plan.raiser == "a" else plan.b
        other = "b" if plan.raiser == "a" else "a"
        if raiser.raised:
            log = logs[plan.raiser]
            assert end_of(log.types) == "error", where
            name = DATA_CALLBACK_NAME[raiser.style]
            failed = [r for r in log.events[-2].errors if r.err_code == ErrorCode.HANDLER_RAISED]
            assert failed, where
            assert name in failed[0].message
            assert "RuntimeError" in failed[0].message
            assert failed[0].component_signature == "handler"
            # The raising side ends in order: its peer sees a close, not an error.
            assert end_of(logs[other].types) == "close", where
        else:
            assert raiser.raise_on is not None
            assert logs[plan.raiser].types.count("data") < raiser.raise_on

    if plan.fault == "vanish":
        assert out.fault_fired
        assert out.terminated_at is not None
        assert out.ended_at is not None
        # Nothing answers: each side gives up after close_timeout (twice at most: the
        # orderly close, then the release), and says so in its errors.
        assert out.ended_at - out.terminated_at <= 2 * CLOSE_TIMEOUT + 0.1, where
        if b_was_reading:
            # Neither side can have seen the other's FIN: each one timed out.  (Or saw a
            # reset: the memory double lets a hard close cross a vanished link, see
            # test_testing.py::test_vanish_swallows_a_later_close.)
            for name in "ab":
                seen = codes(conns[name])
                assert seen & {ErrorCode.CLOSE_TIMEOUT, ErrorCode.CONNECTION_BROKEN}, (
                    f"{where} side {name}"
                )

    if plan.fault in ("terminate_a", "terminate_b"):
        assert out.fault_fired
        assert "error" not in types_a + types_b, where


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
