"""Shared pieces of the TCP fault tests: the grammar checks and the handler styles."""

from __future__ import annotations

import contextlib
import os
import random
import re
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import trio
import trio.testing

from trionet import (
    ConnectionClosedError,
    TCPConnection,
    TCPEvent,
    TCPEventType,
)
from trionet.testing import (
    EventRecorder,
)

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
