"""The TCP event sequence under many seeded fault schedules, over memory streams.

Every connection, on both ends and whatever happens to it, must deliver

    connection · data* · (close | error) · terminate        (or  error · terminate)

with exactly one ``terminate``, always last.  ``test_schedule`` drives many seeded random
schedules (handler style, sizes, fragmentation, delays, and one fault at a random point)
and checks that grammar, plus the byte stream wherever no fault destroyed data.

Everything runs on trio's ``MockClock`` with ``autojump_threshold=0``: timeouts and delays
cost no real time, and a deadlock shows up as a ``TooSlowError`` instead of a hang.
"""

from __future__ import annotations

import random
from typing import Any

import attrs
import pytest
import trio
import trio.testing

from trionet import (
    ConnectionClosedError,
    ErrorCode,
    TCPConnection,
)
from trionet._connection import EVENT_BUFFER
from trionet._transport import RECEIVE_SIZE
from trionet.testing import (
    open_connection_pair,
)
from trionet.testing._memory import DEFAULT_CAPACITY

from .faultkit import (
    CLOSE_TIMEOUT,
    DATA_CALLBACK_NAME,
    LIMIT,
    SETTLE,
    STYLES,
    Side,
    assert_event_shapes,
    assert_grammar,
    codes,
    end_of,
    seed_trio_scheduler,
    wait_bytes_or_end,
)

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
