"""Hostile and broken input: bytes_to_var returns None, fast, with bounded memory.

Every case here must return None (never raise), log why, allocate little and return at
once, whatever the bytes claim.
"""

from __future__ import annotations

import logging
import struct
import time
import tracemalloc
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trionet._godot_types import NodePath, PackedStringArray, StringName, Vector2, Vector3
from trionet._variant import MAX_VAR_SIZE, bytes_to_var, var_to_bytes

# Every test here runs with the Python and the compiled decoding loop.
pytestmark = pytest.mark.usefixtures("variant_decoder")

FLAG_64 = 1 << 16
BILLION = 1_000_000_000
#: Peak memory allowed for a small hostile input, whatever it claims.
SMALL_PEAK = 256 * 1024


def u32(*values: int) -> bytes:
    return struct.pack(f"<{len(values)}I", *values)


def decode_measured(data: bytes) -> tuple[object, int, float]:
    """Decode, returning (value, peak traced bytes, seconds)."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        value = bytes_to_var(data)
        elapsed = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return value, peak, elapsed


HOSTILE = {
    "string claiming 2 GB": u32(4, 0x7FFFFFFF) + b"abcd",
    "string claiming 4 GB": u32(4, 0xFFFFFFFF) + b"abcd",
    "string name claiming 2 GB": u32(21, 0x7FFFFFFF),
    "byte array claiming 2 GB": u32(29, 0x7FFFFFFF) + b"abcd",
    "byte array with the sign bit": u32(29, 0x80000000),
    "int32 array claiming 2 GB": u32(30, 0x7FFFFFFF) + b"abcd",
    "int64 array claiming a billion": u32(31, BILLION),
    "float32 array claiming a billion": u32(32, BILLION),
    "float64 array claiming a billion": u32(33, BILLION),
    "string array claiming a billion": u32(34, BILLION) + u32(0),
    "vector2 array claiming a billion": u32(35, BILLION),
    "vector3 array claiming a billion (doubles)": u32(36 | FLAG_64, BILLION),
    "color array claiming a billion": u32(37, BILLION),
    "vector4 array claiming a billion": u32(38, BILLION),
    "dictionary claiming a billion entries": u32(27, BILLION) + u32(0, 0),
    "array claiming a billion elements": u32(28, BILLION) + u32(0),
    "array claiming 2**31 - 1 with the shared bit": u32(28, 0xFFFFFFFF) + u32(0),
    "node path claiming a billion names": u32(22, 0x80000000 | BILLION, 0, 0),
    "node path claiming 4 G subnames": u32(22, 0x80000000, 0xFFFFFFFF, 2),
    "object": u32(24) + u32(4, 4) + b"Node" + u32(0),
    "object as id": u32(24 | FLAG_64) + struct.pack("<Q", 1234),
    "null object as id": u32(24 | FLAG_64) + struct.pack("<Q", 0),
    "rid": u32(23) + struct.pack("<Q", 77),
    "callable": u32(25),
    "signal": u32(26) + u32(1) + b"s\0\0\0" + struct.pack("<Q", 5),
    "object inside an array": u32(28, 2) + u32(2, 1) + u32(24 | FLAG_64) + bytes(8),
    "object as a dictionary value": u32(27, 1) + u32(4, 1) + b"k\0\0\0" + u32(23) + bytes(8),
    "empty input": b"",
    "three bytes": b"\x02\0\0",
}


@pytest.mark.parametrize("data", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_input_returns_none_quickly_and_small(
    data: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="trionet.godot"):
        value, peak, elapsed = decode_measured(data)
    assert value is None
    assert peak < SMALL_PEAK
    assert elapsed < 0.5
    assert [r.levelno for r in caplog.records] == [logging.WARNING]  # says why, no traceback
    assert "refused" in caplog.text


@pytest.mark.parametrize("type_number", range(39, 256))
def test_unknown_type_numbers_are_refused(type_number: int) -> None:
    assert bytes_to_var(u32(type_number, 0, 0, 0)) is None
    assert bytes_to_var(u32(28, 1, type_number, 0)) is None


def nested(depth: int, inner: bytes, dictionary: bool = False) -> bytes:
    if dictionary:  # {"": {"": ... inner}}
        return (u32(27, 1) + u32(4, 0)) * depth + inner
    return u32(28, 1) * depth + inner


@pytest.mark.parametrize("dictionary", [False, True])
def test_nesting_thousands_deep_is_refused(dictionary: bool) -> None:
    for depth in (1025, 5000, 100_000):
        value, peak, elapsed = decode_measured(nested(depth, u32(0), dictionary))
        assert value is None
        assert elapsed < 1.0
        assert peak < 400 * depth + SMALL_PEAK


def test_nesting_up_to_godots_limit_decodes() -> None:
    # Godot's limit: the top value is depth 0 and nothing may be deeper than 1024.
    value = bytes_to_var(nested(1024, u32(0)))
    for _ in range(1024):
        assert isinstance(value, list)
        assert len(value) == 1
        value = value[0]
    assert value is None
    assert bytes_to_var(nested(1024, u32(28, 0))) is not None  # empty Array at depth 1024
    assert bytes_to_var(nested(1025, u32(28, 0))) is None


def test_encoding_refuses_the_same_depths() -> None:
    value: list[object] = []
    for _ in range(1024):
        value = [value]
    assert var_to_bytes(value) == nested(1024, u32(28, 0))
    with pytest.raises(ValueError, match="1024"):
        var_to_bytes([value])


def test_self_containing_values_are_value_errors() -> None:
    loop: list[object] = []
    loop.append(loop)
    with pytest.raises(ValueError, match="nesting"):
        var_to_bytes(loop)
    cycle: dict[str, object] = {}
    cycle["me"] = cycle
    with pytest.raises(ValueError, match="nesting"):
        var_to_bytes(cycle)


def rich_value() -> object:
    return {
        "name": "héllo",
        "n": [1, 2**40, 0.5, 0.1, None, True],
        StringName("pos"): Vector2(1, 2),
        "v3": [Vector3(1, 2, 3), {"deep": {"er": []}}],
        "path": NodePath("/root/a:b"),
        "tags": PackedStringArray(["x", "yz"]),
        "raw": b"\x01\x02\x03",
    }


def prefixes(data: bytes) -> Iterator[bytes]:
    for end in range(len(data)):
        yield data[:end]


def test_truncation_at_every_offset_returns_none() -> None:
    data = var_to_bytes(rich_value())
    for prefix in prefixes(data):
        assert bytes_to_var(prefix) is None, len(prefix)
    assert bytes_to_var(data) == rich_value()


def test_memory_is_bounded_by_the_input_size() -> None:
    # The worst inputs are many tiny values; decoding keeps within a small multiple.
    count = 1 << 15
    cases = [
        u32(28, count) + u32(28, 0) * count,
        u32(28, count) + u32(27, 0) * count,
        u32(27, count) + b"".join(u32(2, i) + u32(0) for i in range(count)),
        u32(35, count) + struct.pack("<2f", 1.5, 2.5) * count,
        u32(28, count) + (u32(5) + struct.pack("<2f", 1.5, 2.5)) * count,
    ]
    for data in cases:
        value, peak, _ = decode_measured(data)
        assert value is not None
        assert peak < 16 * len(data) + SMALL_PEAK


def test_max_var_size_is_documented_and_sane() -> None:
    assert MAX_VAR_SIZE == 16 * 1024 * 1024


class Recorder(logging.Handler):
    """Keeps the records it is given (hypothesis tests cannot use function fixtures)."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def assert_no_internal_error(data: bytes) -> None:
    """Decode: a value or None, and never the safety net's ERROR (a decoder bug)."""
    logger = logging.getLogger("trionet.godot")
    recorder = Recorder()
    logger.addHandler(recorder)
    try:
        bytes_to_var(data)
    finally:
        logger.removeHandler(recorder)
    assert not [r for r in recorder.records if r.levelno >= logging.ERROR]


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=256))
def test_any_bytes_give_a_value_or_none(data: bytes) -> None:
    assert_no_internal_error(data)


@settings(max_examples=300)
@given(
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=8),
)
def test_corrupted_valid_encodings_never_raise(edits: list[tuple[int, int]]) -> None:
    data = bytearray(var_to_bytes(rich_value()))
    for offset, byte in edits:
        data[offset % len(data)] = byte
    assert_no_internal_error(bytes(data))
