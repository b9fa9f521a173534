"""The workloads: what each one does, what it measures, in which unit, against which servers.

Each :class:`Workload` names a load-client function (:mod:`loadclient` for TCP,
:mod:`loadclient_ws` for WebSocket) with its parameters.  A suite is the set of workloads
and servers measured together in one interleaved run, with the baseline its ratios use.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import loadclient
import loadclient_ws
from measure import Sample, ServerProcess

Measure = Callable[[ServerProcess, float, float], Sample]

SMALL_SIZE = 64  # bytes per small WebSocket message
LARGE_SIZE = 1024 * 1024  # bytes per large WebSocket message
IN_FLIGHT = 16  # small messages outstanding per connection
LARGE_IN_FLIGHT = 4  # large messages outstanding (one connection)
HANDSHAKE_LOOPS = 16  # concurrent connect + upgrade + close loops


@dataclass(frozen=True)
class Workload:
    """One workload: its load client, the unit of its rate and how to display it."""

    name: str
    suite: str  # "tcp" or "ws"
    measure: Measure
    unit: str  # the displayed unit
    scale: float  # rate / scale = displayed figure
    description: str


def _small_payloads() -> list[bytes]:
    """16 distinct 64-byte ASCII messages (sent as text frames)."""
    return [
        f"message {i:02d} ".encode().ljust(SMALL_SIZE, b"abcdefgh"[i % 8 : i % 8 + 1])
        for i in range(16)
    ]


def _large_payloads() -> list[bytes]:
    """4 distinct 1 MiB binary messages (one random body, distinct first bytes)."""
    import os

    body = os.urandom(LARGE_SIZE - 8)
    return [i.to_bytes(8, "big") + body for i in range(LARGE_IN_FLIGHT)]


@functools.cache
def _payloads(kind: str) -> list[bytes]:
    return _small_payloads() if kind == "small" else _large_payloads()


def _ws_small(connections: int) -> Measure:
    def measure(server: ServerProcess, warmup: float, duration: float) -> Sample:
        return loadclient_ws.measure_echo(
            server,
            warmup,
            duration,
            connections=connections,
            in_flight=IN_FLIGHT,
            payloads=_payloads("small"),
            opcode=0x1,
        )

    return measure


def _ws_large(server: ServerProcess, warmup: float, duration: float) -> Sample:
    return loadclient_ws.measure_echo(
        server,
        warmup,
        duration,
        connections=1,
        in_flight=LARGE_IN_FLIGHT,
        payloads=_payloads("large"),
        opcode=0x2,
        unit=LARGE_SIZE,
    )


def _ws_handshake(server: ServerProcess, warmup: float, duration: float) -> Sample:
    return loadclient_ws.measure_handshakes(server, warmup, duration, concurrency=HANDSHAKE_LOOPS)


WORKLOADS: dict[str, Workload] = {
    w.name: w
    for w in [
        Workload(
            "throughput",
            "tcp",
            loadclient.measure_throughput,
            "MB/s",
            1e6,
            f"TCP: one connection streaming 64 KiB blocks, {loadclient.WINDOW // 1024} KiB "
            "in flight; MB (10^6 B) of echoed data per second",
        ),
        Workload(
            "round_trips",
            "tcp",
            loadclient.measure_round_trips,
            "rt/s",
            1.0,
            f"TCP: {loadclient.RT_CONNECTIONS} connections, {loadclient.RT_SIZE}-byte "
            "request then full response; round trips per second",
        ),
        Workload(
            "ws_small_c1",
            "ws",
            _ws_small(1),
            "msg/s",
            1.0,
            f"{SMALL_SIZE} B text echo, 1 connection x {IN_FLIGHT} in flight; messages/s",
        ),
        Workload(
            "ws_small_c50",
            "ws",
            _ws_small(50),
            "msg/s",
            1.0,
            f"{SMALL_SIZE} B text echo, 50 connections x {IN_FLIGHT} in flight; messages/s",
        ),
        Workload(
            "ws_large",
            "ws",
            _ws_large,
            "MB/s",
            1e6,
            f"1 MiB binary echo, 1 connection x {LARGE_IN_FLIGHT} in flight; "
            "MB (10^6 B) echoed per second",
        ),
        Workload(
            "ws_handshake",
            "ws",
            _ws_handshake,
            "hs/s",
            1.0,
            f"connect + upgrade + close handshake + TCP close, {HANDSHAKE_LOOPS} concurrent "
            "loops; handshakes/s",
        ),
    ]
}
"""Every workload, by name."""


@dataclass(frozen=True)
class Suite:
    """Workloads and servers measured together, and the baseline of the ratios."""

    workloads: tuple[str, ...]
    servers: tuple[str, ...]
    baseline: str


SUITES: dict[str, Suite] = {
    "tcp": Suite(
        ("throughput", "round_trips"),
        ("trionet-handler", "trionet-events", "trio-bare", "asyncio-streams", "asyncio-protocol"),
        "trio-bare",
    ),
    "ws": Suite(
        ("ws_small_c1", "ws_small_c50", "ws_large", "ws_handshake"),
        (
            "trionet-ws-handler",
            "trionet-ws-events",
            "websockets-asyncio",
            "websockets-trio",
            "trio-websocket",
        ),
        "websockets-asyncio",
    ),
}
"""The suites ``run.py --suite`` selects."""
