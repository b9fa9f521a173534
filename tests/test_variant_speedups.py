"""The compiled decoding loop gives what the Python loop gives, for every input.

``trionet._variant_speedups`` mirrors ``_variant_decode._decode``: for any bytes, both
return the same value and end offset, or both raise ``DecodeError``.  Valid encodings,
mutated encodings and random bytes are compared, then the compiled loop is checked for
leaks on the success and failure paths.
"""

from __future__ import annotations

import contextlib
import os
import struct
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trionet import _variant_decode
from trionet._godot_types import PackedVector2Array, StringName, Vector2, Vector3
from trionet._variant import var_to_bytes
from trionet._variant_format import DecodeError

from .variantkit import EVERY_TYPE, same, values

COMPILED = _variant_decode.COMPILED_DECODE
PYTHON = _variant_decode.PYTHON_DECODE
FLAG_64 = 1 << 16

if COMPILED is None and os.environ.get("CI"):
    pytest.fail("the compiled variant decoder must be built under CI", pytrace=False)
pytestmark = pytest.mark.skipif(COMPILED is None, reason="trionet._variant_speedups not built")


def outcome(decode: _variant_decode.Decode, data: bytes, pos: int = 0) -> tuple[object, ...]:
    """("ok", value, end) or ("refused",): what a loop makes of the bytes."""
    try:
        value, end = decode(data, pos)
    except (DecodeError, IndexError, struct.error):  # decode_variant reports all three
        return ("refused",)
    return ("ok", value, end)


def check_same(data: bytes, pos: int = 0) -> None:
    assert COMPILED is not None
    python, compiled = outcome(PYTHON, data, pos), outcome(COMPILED, data, pos)
    assert python[0] == compiled[0], (data, python, compiled)
    if python[0] == "ok":
        assert python[2] == compiled[2]
        assert same(python[1], compiled[1]), (python[1], compiled[1])


def u32(*words: int) -> bytes:
    return struct.pack(f"<{len(words)}I", *words)


def string_payload(raw: bytes, type_number: int = 4) -> bytes:
    return u32(type_number, len(raw)) + raw + b"\0" * (-len(raw) & 3)


@pytest.mark.parametrize("value", EVERY_TYPE, ids=lambda v: type(v).__name__)
def test_every_type_decodes_alike(value: object) -> None:
    check_same(var_to_bytes(value))


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(string_payload(b"ab\0cd"), id="string-with-nul"),
        pytest.param(string_payload(b"\xef\xbb\xbfbom"), id="string-with-bom"),
        pytest.param(string_payload(b"\xff\xfe"), id="string-invalid-utf8"),
        pytest.param(string_payload(b"ok\0\xff"), id="string-invalid-after-nul"),
        pytest.param(string_payload(b"\xed\xa0\x80"), id="string-surrogate"),
        pytest.param(string_payload(b"x\0", 21), id="string-name-with-nul"),
        pytest.param(string_payload(b"\xc3", 21), id="string-name-invalid"),
        pytest.param(u32(4, 0xFFFFFFFF), id="string-length-4g"),
        pytest.param(u32(2 | FLAG_64, 1), id="int64-short"),
        pytest.param(u32(3 | FLAG_64) + struct.pack("<d", 0.1), id="double"),
        pytest.param(u32(5 | FLAG_64) + struct.pack("<2d", 1.5, 2.5), id="vector2-64"),
        pytest.param(u32(9 | FLAG_64) + struct.pack("<3d", 1, 2, 3), id="vector3-64"),
        pytest.param(u32(20 | FLAG_64) + struct.pack("<4f", 1, 0, 0, 1), id="color-flag-ignored"),
        pytest.param(u32(35 | FLAG_64, 1) + struct.pack("<2d", 1, 2), id="packed-vector2-64"),
        pytest.param(u32(35, 0x80000000), id="packed-vector2-huge"),
        pytest.param(u32(35, 2) + struct.pack("<3f", 1, 2, 3), id="packed-vector2-short"),
        pytest.param(u32(28, 1_000_000_000), id="array-billion"),
        pytest.param(u32(27, 1_000_000_000), id="dictionary-billion"),
        pytest.param(u32(27, 1, 28, 0, 0), id="dictionary-array-key"),
        pytest.param(u32(27, 1, 30, 1, 7, 0), id="dictionary-packed-int-key"),
        pytest.param(u32(27, 2, 2, 1, 0, 2, 1, 1, 1), id="dictionary-duplicate-key"),
        pytest.param(u32(28 | 1 << 16, 2, 1, 2, 5), id="typed-array"),
        pytest.param(u32(28 | 1 << 16, 24, 0), id="typed-array-of-objects"),
        pytest.param(u32(28 | 2 << 16, 0), id="array-typed-with-class"),
        pytest.param(u32(27 | 1 << 18 | 1 << 16, 4, 2, 0), id="typed-dictionary"),
        pytest.param(u32(24), id="object"),
        pytest.param(u32(39), id="unknown-type"),
        pytest.param(u32(0x1200) + u32(0), id="high-header-bits"),
        pytest.param(b"", id="empty"),
        pytest.param(b"\x02\0\0\0\x05\0", id="partial-word"),
    ],
)
def test_edge_cases_decode_alike(data: bytes) -> None:
    check_same(data)


def nested(depth: int) -> bytes:
    return u32(28, 1) * depth + u32(28, 0)


def depth_of(value: object) -> int:
    """How many lists are nested in ``value`` (iteratively: too deep for recursion)."""
    depth = 0
    while isinstance(value, list):
        depth += 1
        value = value[0] if value else None
    return depth


@pytest.mark.parametrize("depth", [1023, 1024, 1025, 5000])
def test_nesting_limit_is_the_same(depth: int) -> None:
    python, compiled = outcome(PYTHON, nested(depth)), outcome(COMPILED, nested(depth))
    assert python[0] == compiled[0] == ("ok" if depth <= 1024 else "refused")
    if python[0] == "ok":
        assert python[2] == compiled[2]
        assert depth_of(python[1]) == depth_of(compiled[1]) == depth + 1


def test_offset_into_the_data() -> None:
    data = b"\0" * 8 + var_to_bytes([1, "two", Vector2(3, 4)]) + b"trailing"
    check_same(data, 8)


@settings(max_examples=250)
@given(values)
def test_generated_values_decode_alike(value: object) -> None:
    check_same(var_to_bytes(value))


@settings(max_examples=250)
@given(values, st.data())
def test_mutated_encodings_decode_alike(value: object, data: st.DataObject) -> None:
    encoded = bytearray(var_to_bytes(value))
    for _ in range(data.draw(st.integers(1, 4))):
        index = data.draw(st.integers(0, len(encoded) - 1))
        encoded[index] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(encoded)))
    check_same(bytes(encoded[:cut]))
    check_same(bytes(encoded))


@settings(max_examples=500)
@given(st.binary(max_size=96))
def test_random_bytes_decode_alike(data: bytes) -> None:
    check_same(data)


@settings(max_examples=300)
@given(st.lists(st.sampled_from([0, 1, 2, 3, 4, 5, 6, 9, 20, 21, 27, 28, 35]), max_size=24))
def test_random_headers_decode_alike(types: list[int]) -> None:
    # Headers of the types the compiled loop reads itself, each followed by a small word:
    # random bytes rarely make a valid header, these do.
    check_same(b"".join(u32(t, i % 3) for i, t in enumerate(types)))


def test_no_leak_on_success_or_failure() -> None:
    assert COMPILED is not None
    good = var_to_bytes(
        {
            "name": StringName("p"),
            "path": PackedVector2Array([Vector2(1, 2)]),
            "at": Vector3(1, 2, 3),
            "list": [1, 2.5, "x", None, True, {"k": [b"\x01"]}],
        }
    )
    bad = [good[:-4], u32(27, 1, 28, 0, 0), string_payload(b"\xff"), nested(1025)]

    def run() -> None:
        for _ in range(2000):
            COMPILED(good, 0)
            for data in bad:
                with contextlib.suppress(DecodeError):
                    COMPILED(data, 0)

    run()  # warm up caches and interned objects
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        run()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 64 * 1024, f"{grown} bytes still allocated after 10,000 decodes"


def test_arguments_are_checked() -> None:
    assert COMPILED is not None
    with pytest.raises(TypeError):
        COMPILED(bytearray(8), 0)
    with pytest.raises(ValueError, match="multiple of 4"):
        COMPILED(b"\0" * 8, 2)
