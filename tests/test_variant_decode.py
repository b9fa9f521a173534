"""bytes_to_var reads Godot 4's layout, including forms trionet never writes.

Inputs are built here with struct.pack: 64-bit components from double-precision Godot
builds, typed containers (Godot 4.3+), the shared bit of counts, NUL and BOM handling of
Godot's UTF-8 reader, trailing bytes.
"""

from __future__ import annotations

import array
import logging
import math
import struct
import sys

import pytest

from trionet import _variant_readers
from trionet._godot_types import (
    AABB,
    Basis,
    Color,
    NodePath,
    PackedColorArray,
    PackedStringArray,
    PackedVector2Array,
    PackedVector3Array,
    PackedVector4Array,
    Plane,
    Projection,
    Quaternion,
    Rect2,
    Rect2i,
    StringName,
    Transform2D,
    Transform3D,
    Vector2,
    Vector2i,
    Vector3,
    Vector3i,
    Vector4,
    Vector4i,
)
from trionet._variant import bytes_to_var, var_to_bytes
from trionet._variant_decode import decode_variant

# Every test here runs with the Python and the compiled decoding loop.
pytestmark = pytest.mark.usefixtures("variant_decoder")

FLAG_64 = 1 << 16


def u32(*values: int) -> bytes:
    return struct.pack(f"<{len(values)}I", *values)


def f32(*values: float) -> bytes:
    return struct.pack(f"<{len(values)}f", *values)


def f64(*values: float) -> bytes:
    return struct.pack(f"<{len(values)}d", *values)


def string(text: str) -> bytes:
    raw = text.encode()
    return u32(len(raw)) + raw + b"\0" * ((4 - len(raw) % 4) % 4)


def test_atoms() -> None:
    assert bytes_to_var(u32(0)) is None
    assert bytes_to_var(u32(1, 1)) is True
    assert bytes_to_var(u32(1, 0)) is False
    assert bytes_to_var(u32(1, 7)) is True  # any non-zero, as in Godot
    assert bytes_to_var(u32(2) + struct.pack("<i", -5)) == -5
    assert bytes_to_var(u32(2 | FLAG_64) + struct.pack("<q", -(2**40))) == -(2**40)
    assert bytes_to_var(u32(2 | FLAG_64) + struct.pack("<q", 3)) == 3
    assert bytes_to_var(u32(3) + f32(1.5)) == 1.5
    assert bytes_to_var(u32(3 | FLAG_64) + f64(0.1)) == 0.1
    assert math.isnan(bytes_to_var(u32(3 | FLAG_64) + f64(math.nan)))  # type: ignore[arg-type]
    assert bytes_to_var(u32(4) + string("héllo")) == "héllo"
    assert bytes_to_var(u32(21) + string("name")) == StringName("name")


def test_decode_accepts_bytearray_and_memoryview() -> None:
    data = u32(4) + string("abc") + b"tail"
    assert bytes_to_var(bytearray(data)) == "abc"
    assert bytes_to_var(memoryview(data)) == "abc"
    assert bytes_to_var(memoryview(data)[: len(data) - 4]) == "abc"


@pytest.mark.parametrize("data", ["text", 12, None, [1, 2]])
def test_decode_of_non_bytes_is_a_type_error(data: object) -> None:
    with pytest.raises(TypeError, match="bytes-like"):
        bytes_to_var(data)  # type: ignore[arg-type]


def test_trailing_bytes_are_ignored_as_in_godot() -> None:
    assert bytes_to_var(u32(2, 5) + b"garbage!") == 5
    assert decode_variant(u32(2, 5) + b"garbage!") == (5, 8)
    assert decode_variant(b"xxxx" + u32(2, 5), 4) == (5, 12)


def test_header_type_is_the_low_byte() -> None:
    # Godot reads the type from the low byte only; byte 1 is unused.
    assert bytes_to_var(u32(0x0201, 1)) is True


def test_string_stops_at_nul_and_skips_bom_as_godot_does() -> None:
    raw = b"ab\0cd"
    assert bytes_to_var(u32(4, len(raw)) + raw + b"\0\0\0") == "ab"
    # Invalid UTF-8 after the NUL is never read.
    raw = b"ab\0\xff"
    assert bytes_to_var(u32(4, len(raw)) + raw) == "ab"
    raw = b"\xef\xbb\xbfhi"
    assert bytes_to_var(u32(4, len(raw)) + raw + b"\0\0\0") == "hi"


def test_invalid_utf8_is_refused(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="trionet.godot"):
        assert bytes_to_var(u32(4, 2) + b"\xff\xfe\0\0") is None
    assert "UTF-8" in caplog.text


def test_math_types_32_bit() -> None:
    cases = {
        u32(5) + f32(1, 2): Vector2(1, 2),
        u32(6) + struct.pack("<2i", -1, 2): Vector2i(-1, 2),
        u32(7) + f32(1, 2, 3, 4): Rect2(Vector2(1, 2), Vector2(3, 4)),
        u32(8) + struct.pack("<4i", 1, 2, 3, 4): Rect2i(Vector2i(1, 2), Vector2i(3, 4)),
        u32(9) + f32(1, 2, 3): Vector3(1, 2, 3),
        u32(10) + struct.pack("<3i", 1, 2, 3): Vector3i(1, 2, 3),
        u32(11) + f32(1, 2, 3, 4, 5, 6): Transform2D(Vector2(1, 2), Vector2(3, 4), Vector2(5, 6)),
        u32(12) + f32(1, 2, 3, 4): Vector4(1, 2, 3, 4),
        u32(13) + struct.pack("<4i", 1, 2, 3, 4): Vector4i(1, 2, 3, 4),
        u32(14) + f32(0, 1, 0, 5): Plane(Vector3(0, 1, 0), 5),
        u32(15) + f32(0, 0, 0, 1): Quaternion(0, 0, 0, 1),
        u32(16) + f32(1, 2, 3, 4, 5, 6): AABB(Vector3(1, 2, 3), Vector3(4, 5, 6)),
        u32(17) + f32(1, 4, 7, 2, 5, 8, 3, 6, 9): Basis(
            Vector3(1, 2, 3), Vector3(4, 5, 6), Vector3(7, 8, 9)
        ),
        u32(20) + f32(1, 0.5, 0.25, 1): Color(1, 0.5, 0.25),
    }
    for data, expected in cases.items():
        assert bytes_to_var(data) == expected, expected


def test_math_types_from_a_double_precision_build() -> None:
    # With FLAG_64 the float components are doubles; integer forms and Color never are.
    assert bytes_to_var(u32(5 | FLAG_64) + f64(0.1, 0.2)) == Vector2(0.1, 0.2)
    assert bytes_to_var(u32(9 | FLAG_64) + f64(1, 2, 3)) == Vector3(1, 2, 3)
    assert bytes_to_var(u32(15 | FLAG_64) + f64(0, 0, 0, 1)) == Quaternion(0, 0, 0, 1)
    transform = bytes_to_var(u32(18 | FLAG_64) + f64(1, 0, 0, 0, 1, 0, 0, 0, 1, 7, 8, 9))
    identity = Basis(Vector3(1, 0, 0), Vector3(0, 1, 0), Vector3(0, 0, 1))
    assert transform == Transform3D(identity, Vector3(7, 8, 9))
    projection = bytes_to_var(u32(19 | FLAG_64) + f64(*range(16)))
    assert projection == Projection(*(Vector4(*range(i, i + 4)) for i in range(0, 16, 4)))
    assert bytes_to_var(u32(20 | FLAG_64) + f32(1, 1, 1, 1)) == Color(1, 1, 1)
    packed = bytes_to_var(u32(35 | FLAG_64, 1) + f64(0.1, 0.2))
    assert packed == PackedVector2Array([Vector2(0.1, 0.2)])
    packed = bytes_to_var(u32(36 | FLAG_64, 1) + f64(1, 2, 3))
    assert packed == PackedVector3Array([Vector3(1, 2, 3)])
    packed = bytes_to_var(u32(38 | FLAG_64, 1) + f64(1, 2, 3, 4))
    assert packed == PackedVector4Array([Vector4(1, 2, 3, 4)])


def test_node_path() -> None:
    data = u32(22, 2 | 0x80000000, 1, 1) + string("root") + string("Player") + string("hp")
    assert bytes_to_var(data) == NodePath("/root/Player:hp")
    assert bytes_to_var(u32(22, 0x80000000, 0, 0)) == NodePath("")
    # The obsolete layout (flag 2) stores the property as one more subname.
    data = u32(22, 1 | 0x80000000, 0, 2) + string("A") + string("prop")
    assert bytes_to_var(data) == NodePath("A:prop")


def test_old_style_node_path_is_refused_as_in_godot() -> None:
    assert bytes_to_var(u32(22, 4) + b"abcd") is None


def test_node_path_part_that_cannot_be_written_is_refused() -> None:
    assert bytes_to_var(u32(22, 1 | 0x80000000, 0, 0) + string("a/b")) is None
    assert bytes_to_var(u32(22, 1 | 0x80000000, 0, 0) + string("")) is None


def test_containers_and_shared_bit() -> None:
    assert bytes_to_var(u32(28, 0)) == []
    assert bytes_to_var(u32(27, 0)) == {}
    # The top bit of the count is Godot's old "shared" flag, not part of the count.
    assert bytes_to_var(u32(28, 0x80000001) + u32(2, 9)) == [9]
    data = u32(27, 0x80000001) + u32(4) + string("k") + u32(28, 1) + u32(0)
    assert bytes_to_var(data) == {"k": [None]}


def test_nested_containers() -> None:
    data = u32(28, 2) + u32(27, 1) + u32(4) + string("a") + u32(28, 1) + u32(27, 0) + u32(2, 3)
    assert bytes_to_var(data) == [{"a": [{}]}, 3]


def test_duplicate_dictionary_keys_keep_the_last_value() -> None:
    data = u32(27, 2) + u32(2, 1) + u32(2, 10) + u32(2, 1) + u32(2, 20)
    assert bytes_to_var(data) == {1: 20}


def test_value_classes_are_dictionary_keys() -> None:
    data = u32(27, 1) + u32(5) + f32(1, 2) + u32(0)
    assert bytes_to_var(data) == {Vector2(1, 2): None}


def test_container_as_dictionary_key_is_refused() -> None:
    # Godot allows an Array as a key; a Python dict cannot hold one.
    assert bytes_to_var(u32(27, 1) + u32(28, 0) + u32(0)) is None


def test_typed_array_of_a_builtin_type() -> None:
    typed = 1 << 16  # kind 1: built-in element type, a u32 type number follows
    assert bytes_to_var(u32(28 | typed, 2, 2) + u32(2, 1) + u32(2, 2)) == [1, 2]


def test_typed_dictionary_of_builtin_types() -> None:
    key_typed, value_typed = 1 << 16, 1 << 18
    data = u32(27 | key_typed | value_typed, 4, 2, 1) + u32(4) + string("k") + u32(2, 5)
    assert bytes_to_var(data) == {"k": 5}
    data = u32(27 | value_typed, 9, 1) + u32(2, 1) + u32(9) + f32(1, 2, 3)
    assert bytes_to_var(data) == {1: Vector3(1, 2, 3)}


@pytest.mark.parametrize(
    "data",
    [
        u32(28 | (2 << 16)) + string("Node") + u32(0),  # class name
        u32(28 | (3 << 16)) + string("res://x.gd") + u32(0),  # script
        u32(28 | (1 << 16), 24, 0),  # built-in type Object
        u32(28 | (1 << 16), 39, 0),  # unknown built-in type
        u32(27 | (2 << 18)) + string("Node") + u32(0),  # Dictionary value class
        u32(27 | (3 << 16)) + string("res://x.gd") + u32(0),  # Dictionary key script
    ],
)
def test_containers_typed_with_objects_are_refused(data: bytes) -> None:
    assert bytes_to_var(data) is None


def test_packed_arrays() -> None:
    assert bytes_to_var(u32(29, 5) + b"abcde\0\0\0") == b"abcde"
    assert isinstance(bytes_to_var(u32(29, 0)), bytes)
    ints = bytes_to_var(u32(30, 2) + struct.pack("<2i", 1, -2))
    assert isinstance(ints, array.array)
    assert (ints.typecode, ints.tolist()) == ("i", [1, -2])
    longs = bytes_to_var(u32(31, 1) + struct.pack("<q", -(2**40)))
    assert isinstance(longs, array.array)
    assert (longs.typecode, longs.tolist()) == ("q", [-(2**40)])
    floats = bytes_to_var(u32(32, 1) + f32(1.5))
    assert isinstance(floats, array.array)
    assert (floats.typecode, floats.tolist()) == ("f", [1.5])
    doubles = bytes_to_var(u32(33, 1) + f64(0.1))
    assert isinstance(doubles, array.array)
    assert (doubles.typecode, doubles.tolist()) == ("d", [0.1])
    strings = u32(34, 2) + u32(3) + b"ab\0\0" + u32(1) + b"\0\0\0\0"
    assert bytes_to_var(strings) == PackedStringArray(["ab", ""])
    assert bytes_to_var(u32(35, 1) + f32(1, 2)) == PackedVector2Array([Vector2(1, 2)])
    assert bytes_to_var(u32(36, 1) + f32(1, 2, 3)) == PackedVector3Array([Vector3(1, 2, 3)])
    assert bytes_to_var(u32(37, 1) + f32(1, 0, 0, 1)) == PackedColorArray([Color(1, 0, 0)])
    assert bytes_to_var(u32(38, 1) + f32(1, 2, 3, 4)) == PackedVector4Array([Vector4(1, 2, 3, 4)])


def test_packed_byte_array_needs_its_padding() -> None:
    # Godot's encoder always pads; trionet also insists on the padding when decoding.
    assert bytes_to_var(u32(29, 5) + b"abcde") is None


def test_allow_objects_changes_nothing() -> None:
    assert bytes_to_var(u32(24, 0), allow_objects=True) is None
    assert bytes_to_var(u32(2, 4), allow_objects=True) == 4


def test_string_caches_give_the_same_values_and_stay_bounded() -> None:
    import trionet._variant as encoder
    import trionet._variant_decode as decoder

    for raw, text in [(b"ab\0cd", "ab"), (b"\xef\xbb\xbfhi", "hi"), (b"key", "key")]:
        data = u32(4, len(raw)) + raw + b"\0" * (-len(raw) & 3)
        assert [bytes_to_var(data) for _ in range(3)] == [text] * 3  # cached or not
        assert bytes_to_var(u32(21) + data[4:]) == StringName(text)
    for i in range(3 * decoder._CACHED_STRINGS):
        assert bytes_to_var(var_to_bytes(f"s{i}")) == f"s{i}"
    assert len(decoder._STRINGS) <= decoder._CACHED_STRINGS
    assert len(encoder._STRINGS) <= encoder._CACHED_STRINGS
    long = "x" * (decoder._CACHED_LENGTH + 1)
    assert bytes_to_var(var_to_bytes(long)) == long
    assert long.encode() not in decoder._STRINGS
    assert long not in encoder._STRINGS
    # A cached encoding is the exact bytes.
    assert var_to_bytes("key") == var_to_bytes("key") == u32(4, 3) + b"key\0"


def test_misaligned_start_decodes_the_same() -> None:
    data = b"xx" + u32(28, 2) + u32(4, 1) + b"a\0\0\0" + u32(5) + f32(1.5, 2.0)
    assert decode_variant(data, 2) == (["a", Vector2(1.5, 2.0)], len(data))


@pytest.mark.skipif(sys.byteorder != "little", reason="simulates the other byte order")
def test_word_views_swap_bytes_on_a_big_endian_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    data = u32(1, 0xFFFFFFFE) + f32(1.5) + b"\x07"  # the partial word is left out
    expected = ([1, 0xFFFFFFFE, 0x3FC00000], [1, -2, 0x3FC00000], 1.5)
    words, ints, floats = _variant_readers.words_of(data)
    assert (list(words), list(ints), floats[2]) == expected
    # Pretend to be big-endian: the native reading of these bytes is swapped back.
    swapped = b"".join(data[i : i + 4][::-1] for i in range(0, 12, 4))
    monkeypatch.setattr(_variant_readers, "_BIG_ENDIAN", True)
    words, ints, floats = _variant_readers.words_of(swapped)
    assert (list(words), list(ints), floats[2]) == expected
