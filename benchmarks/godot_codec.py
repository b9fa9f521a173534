"""Godot Variant codec benchmark: trionet's var_to_bytes/bytes_to_var against json.

The workload is a typical game-state Dictionary: a few dozen entries with players
(positions and velocities as Vector2/Vector3, health, names, inventories as Arrays),
a PackedVector2Array path, colours and nested Dictionaries.  The JSON baseline encodes
the same data with vectors as lists of numbers and colours as lists (what a JSON
protocol would send), so both sides carry the same information.

Rounds are interleaved: each round times the four operations (Godot encode, Godot decode,
JSON encode, JSON decode) in a rotated order, each for ``--duration`` seconds.  The
table shows the median rate over rounds (operations per second) and the ratio of the
codec to json (target: at least 0.5x; json is written in C).

Run ``python benchmarks/godot_codec.py --help`` for the options; ``--quick`` is a smoke
test.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable

from trionet import _variant_decode
from trionet._godot_types import (
    Color,
    PackedVector2Array,
    StringName,
    Vector2,
    Vector2i,
    Vector3,
)
from trionet._variant import bytes_to_var, var_to_bytes


def game_state() -> dict[object, object]:
    """The Godot-typed workload: 4 players, a path, a few nested settings."""
    players: dict[object, object] = {}
    for i in range(4):
        players[f"player_{i}"] = {
            "id": 1000 + i,
            "name": f"Player {i}",
            "position": Vector3(10.5 * i, 0.0, -3.25 * i),
            "velocity": Vector2(1.5, -0.75),
            "health": 87.5,
            "alive": True,
            "team": StringName("red" if i % 2 else "blue"),
            "inventory": ["sword", "shield", 3, 12, None],
            "cell": Vector2i(i, -i),
        }
    return {
        "tick": 123456,
        "time": 3021.5,
        "map": "arena_02",
        "players": players,
        "path": PackedVector2Array(Vector2(float(x), float(x) * 0.5) for x in range(16)),
        "colors": [Color(1.0, 0.5, 0.25), Color(0.0, 0.0, 1.0, 0.5)],
        "settings": {"gravity": 9.75, "friction": 0.5, "flags": [True, False, True]},
        "scores": {1000: 12, 1001: 7, 1002: 0, 1003: 31},
    }


def to_json_shape(value: object) -> object:
    """The same data with Godot types replaced by what JSON can carry."""
    if isinstance(value, dict):
        return {str(k): to_json_shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_json_shape(v) for v in value]
    if isinstance(value, (Vector2, Vector2i)):
        return [value.x, value.y]
    if isinstance(value, Vector3):
        return [value.x, value.y, value.z]
    if isinstance(value, Color):
        return [value.r, value.g, value.b, value.a]
    if isinstance(value, StringName):
        return value.value
    if isinstance(value, PackedVector2Array):
        return [[v.x, v.y] for v in value]
    return value


def rate(operation: Callable[[], object], duration: float) -> float:
    """Operations per second over about ``duration`` seconds (batches of 50)."""
    count = 0
    start = time.perf_counter()
    deadline = start + duration
    while True:
        for _ in range(50):
            operation()
        count += 50
        now = time.perf_counter()
        if now >= deadline:
            return count / (now - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=float, default=1.0, help="seconds per operation")
    parser.add_argument("--quick", action="store_true", help="1 round of 0.2 s")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.duration = 1, 0.2

    state = game_state()
    encoded = var_to_bytes(state)
    assert var_to_bytes(bytes_to_var(encoded)) == encoded
    plain = to_json_shape(state)
    text = json.dumps(plain)
    operations: dict[str, Callable[[], object]] = {
        "godot encode": lambda: var_to_bytes(state),
        "godot decode": lambda: bytes_to_var(encoded),
        "json encode": lambda: json.dumps(plain),
        "json decode": lambda: json.loads(text),
    }
    names = list(operations)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for round_number in range(args.rounds):
        shift = round_number % len(names)
        for name in names[shift:] + names[:shift]:
            samples[name].append(rate(operations[name], args.duration))

    median = {name: statistics.median(values) for name, values in samples.items()}
    print(f"payload: Godot {len(encoded)} bytes, JSON {len(text)} bytes; {args.rounds} rounds")
    loop = "compiled" if _variant_decode.COMPILED_DECODE is not None else "pure Python"
    print(f"decoding loop: {loop} (TRIONET_NO_SPEEDUPS=1 measures the pure-Python one)")
    print(f"{'operation':<14} {'median ops/s':>14} {'min':>10} {'max':>10}")
    for name in names:
        values = samples[name]
        print(f"{name:<14} {median[name]:>14,.0f} {min(values):>10,.0f} {max(values):>10,.0f}")
    for op in ("encode", "decode"):
        ratio = median[f"godot {op}"] / median[f"json {op}"]
        print(f"godot/json {op}: {ratio:.2f}x (target 0.5x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
