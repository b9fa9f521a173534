"""var_to_bytes gives exactly the bytes of Godot 4's documented layout.

The expected bytes are built here, independently of the codec, with struct.pack from the
layout (type numbers from Godot 4's ``Variant::Type``).
"""

from __future__ import annotations

import array
import enum
import math
import struct

import pytest

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
from trionet._variant import var_to_bytes

FLAG_64 = 1 << 16


def u32(*values: int) -> bytes:
    return struct.pack(f"<{len(values)}I", *values)


def f32(*values: float) -> bytes:
    return struct.pack(f"<{len(values)}f", *values)


def pad(raw: bytes) -> bytes:
    return raw + b"\0" * ((4 - len(raw) % 4) % 4)


def string(text: str) -> bytes:
    raw = text.encode()
    return u32(len(raw)) + pad(raw)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, u32(0)),
        (True, u32(1, 1)),
        (False, u32(1, 0)),
        (0, u32(2) + struct.pack("<i", 0)),
        (-1, u32(2) + struct.pack("<i", -1)),
        (2**31 - 1, u32(2) + struct.pack("<i", 2**31 - 1)),
        (-(2**31), u32(2) + struct.pack("<i", -(2**31))),
        (2**31, u32(2 | FLAG_64) + struct.pack("<q", 2**31)),
        (-(2**31) - 1, u32(2 | FLAG_64) + struct.pack("<q", -(2**31) - 1)),
        (2**63 - 1, u32(2 | FLAG_64) + struct.pack("<q", 2**63 - 1)),
        (-(2**63), u32(2 | FLAG_64) + struct.pack("<q", -(2**63))),
    ],
)
def test_atoms(value: object, expected: bytes) -> None:
    assert var_to_bytes(value) == expected


@pytest.mark.parametrize(
    ("value", "wide"),
    [
        (0.0, False),
        (-0.0, False),
        (1.5, False),
        (-2.75, False),
        (math.inf, False),
        (-math.inf, False),
        (0.1, True),  # not exact in float32
        (1e300, True),  # beyond float32's range
        (2.0**-149, False),  # the smallest float32 subnormal
        (math.nan, True),  # NaN never compares equal: Godot sends it in 64 bits
    ],
)
def test_float_width_follows_godots_rule(value: float, wide: bool) -> None:
    # Godot: 32 bits when double(float(d)) == d, else 64 bits with FLAG_64.
    if wide:
        expected = u32(3 | FLAG_64) + struct.pack("<d", value)
    else:
        expected = u32(3) + struct.pack("<f", value)
    assert var_to_bytes(value) == expected


@pytest.mark.parametrize("length", range(6))
def test_string_padding(length: int) -> None:
    text = "x" * length
    expected = u32(4, length) + text.encode() + b"\0" * ((4 - length % 4) % 4)
    assert var_to_bytes(text) == expected
    assert len(var_to_bytes(text)) % 4 == 0


def test_string_is_utf8_with_byte_length() -> None:
    raw = "héllo €".encode()
    assert var_to_bytes("héllo €") == u32(4, len(raw)) + pad(raw)


def test_string_name_shares_the_string_layout() -> None:
    assert var_to_bytes(StringName("abcde")) == u32(21) + string("abcde")


@pytest.mark.parametrize(
    ("text", "names", "subnames", "flags"),
    [
        ("", [], [], 0),
        ("Player", ["Player"], [], 0),
        ("/root/Main/Player", ["root", "Main", "Player"], [], 1),
        ("Player/Sprite:modulate:a", ["Player", "Sprite"], ["modulate", "a"], 0),
        ("a//b/", ["a", "b"], [], 0),
        (":x", [], ["x"], 0),
        ("/", [], [], 1),
    ],
)
def test_node_path_new_layout(text: str, names: list[str], subnames: list[str], flags: int) -> None:
    expected = u32(22, len(names) | 0x80000000, len(subnames), flags)
    expected += b"".join(string(part) for part in names + subnames)
    assert var_to_bytes(NodePath(text)) == expected


def test_invalid_node_path_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="NodePath"):
        var_to_bytes(NodePath("a::b"))


def test_math_types_are_32_bit_floats() -> None:
    v2, v3, v4 = Vector2(1, 2), Vector3(1, 2, 3), Vector4(1, 2, 3, 4)
    basis = Basis(Vector3(1, 2, 3), Vector3(4, 5, 6), Vector3(7, 8, 9))
    cases = {
        v2: u32(5) + f32(1, 2),
        Rect2(Vector2(1, 2), Vector2(3, 4)): u32(7) + f32(1, 2, 3, 4),
        v3: u32(9) + f32(1, 2, 3),
        Transform2D(Vector2(1, 2), Vector2(3, 4), Vector2(5, 6)): u32(11) + f32(1, 2, 3, 4, 5, 6),
        v4: u32(12) + f32(1, 2, 3, 4),
        Plane(Vector3(0, 1, 0), 5): u32(14) + f32(0, 1, 0, 5),
        Quaternion(0.5, 0, 0, 1): u32(15) + f32(0.5, 0, 0, 1),
        AABB(Vector3(1, 2, 3), Vector3(4, 5, 6)): u32(16) + f32(1, 2, 3, 4, 5, 6),
        # Godot sends a Basis row by row: x.x, y.x, z.x, then x.y, y.y, z.y, ...
        basis: u32(17) + f32(1, 4, 7, 2, 5, 8, 3, 6, 9),
        Transform3D(basis, Vector3(10, 11, 12)): u32(18)
        + f32(1, 4, 7, 2, 5, 8, 3, 6, 9)
        + f32(10, 11, 12),
        Projection(v4, Vector4(5, 6, 7, 8), Vector4(9, 10, 11, 12), Vector4(13, 14, 15, 16)): (
            u32(19) + f32(*range(1, 17))
        ),
        Color(1, 0.5, 0.25): u32(20) + f32(1, 0.5, 0.25, 1),
        Color(0, 0, 0, 0): u32(20) + f32(0, 0, 0, 0),
    }
    for value, expected in cases.items():
        assert var_to_bytes(value) == expected, value


def test_float_components_round_to_float32_and_overflow_to_inf() -> None:
    assert var_to_bytes(Vector2(0.1, 1e300)) == u32(5) + f32(0.1, math.inf)
    assert var_to_bytes(Vector2(-1e300, 0)) == u32(5) + f32(-math.inf, 0)


def test_integer_vectors() -> None:
    assert var_to_bytes(Vector2i(1, -2)) == u32(6) + struct.pack("<2i", 1, -2)
    assert var_to_bytes(Vector3i(1, -2, 3)) == u32(10) + struct.pack("<3i", 1, -2, 3)
    assert var_to_bytes(Vector4i(1, 2, 3, -(2**31))) == u32(13) + struct.pack(
        "<4i", 1, 2, 3, -(2**31)
    )
    rect = Rect2i(Vector2i(1, 2), Vector2i(3, 4))
    assert var_to_bytes(rect) == u32(8) + struct.pack("<4i", 1, 2, 3, 4)


def test_empty_containers() -> None:
    assert var_to_bytes([]) == u32(28, 0)
    assert var_to_bytes(()) == u32(28, 0)
    assert var_to_bytes({}) == u32(27, 0)
    assert var_to_bytes(b"") == u32(29, 0)
    assert var_to_bytes(PackedStringArray()) == u32(34, 0)
    assert var_to_bytes(PackedVector2Array()) == u32(35, 0)


def test_array_of_mixed_values() -> None:
    expected = u32(28, 3) + u32(2, 7) + string_variant("hi") + u32(0)
    assert var_to_bytes([7, "hi", None]) == expected


def string_variant(text: str) -> bytes:
    return u32(4) + string(text)


def test_nested_containers() -> None:
    # Array in Dictionary in Array, and a Dictionary in that Array.
    value = [1, {"pos": Vector2(1, 2), "list": [True, {"k": "v"}]}, []]
    expected = (
        u32(28, 3)
        + u32(2, 1)
        + u32(27, 2)
        + string_variant("pos")
        + u32(5)
        + f32(1, 2)
        + string_variant("list")
        + u32(28, 2)
        + u32(1, 1)
        + u32(27, 1)
        + string_variant("k")
        + string_variant("v")
        + u32(28, 0)
    )
    assert var_to_bytes(value) == expected


def test_dictionary_keeps_insertion_order_and_key_types() -> None:
    value = {3: "a", "b": 2.5, StringName("c"): None}
    expected = (
        u32(27, 3)
        + u32(2, 3)
        + string_variant("a")
        + string_variant("b")
        + u32(3)
        + f32(2.5)
        + u32(21)
        + string("c")
        + u32(0)
    )
    assert var_to_bytes(value) == expected


@pytest.mark.parametrize("length", range(6))
def test_packed_byte_array_padding(length: int) -> None:
    payload = bytes(range(1, length + 1))
    expected = u32(29, length) + pad(payload)
    assert var_to_bytes(payload) == expected
    assert var_to_bytes(bytearray(payload)) == expected


def test_numeric_packed_arrays() -> None:
    assert var_to_bytes(array.array("i", [1, -2])) == u32(30, 2) + struct.pack("<2i", 1, -2)
    assert var_to_bytes(array.array("q", [1, -(2**40)])) == u32(31, 2) + struct.pack(
        "<2q", 1, -(2**40)
    )
    assert var_to_bytes(array.array("f", [1.5, 0.25])) == u32(32, 2) + f32(1.5, 0.25)
    assert var_to_bytes(array.array("d", [0.1])) == u32(33, 1) + struct.pack("<d", 0.1)


@pytest.mark.skipif(array.array("l").itemsize != 8, reason="'l' is 4 bytes here")
def test_long_array_with_8_byte_items_is_int64() -> None:
    assert var_to_bytes(array.array("l", [5])) == u32(31, 1) + struct.pack("<q", 5)


def test_packed_string_array_elements_carry_a_nul() -> None:
    # Godot writes each element's length including a terminating NUL, then pads.
    value = PackedStringArray(["", "abc", "abcd"])
    expected = u32(34, 3) + u32(1) + pad(b"\0") + u32(4) + b"abc\0" + u32(5) + pad(b"abcd\0")
    assert var_to_bytes(value) == expected


def test_packed_vector_and_color_arrays() -> None:
    v2 = PackedVector2Array([Vector2(1, 2), Vector2(3, 4)])
    assert var_to_bytes(v2) == u32(35, 2) + f32(1, 2, 3, 4)
    v3 = PackedVector3Array([Vector3(1, 2, 3)])
    assert var_to_bytes(v3) == u32(36, 1) + f32(1, 2, 3)
    colors = PackedColorArray([Color(1, 0, 0), Color(0, 1, 0, 0.5)])
    assert var_to_bytes(colors) == u32(37, 2) + f32(1, 0, 0, 1, 0, 1, 0, 0.5)
    v4 = PackedVector4Array([Vector4(1, 2, 3, 4)])
    assert var_to_bytes(v4) == u32(38, 1) + f32(1, 2, 3, 4)


def test_subclasses_encode_as_their_base() -> None:
    class Level(enum.IntEnum):
        HARD = 3

    class Name(str):
        pass

    assert var_to_bytes(Level.HARD) == var_to_bytes(3)
    assert var_to_bytes(Name("x")) == var_to_bytes("x")
    assert var_to_bytes([Level.HARD]) == var_to_bytes([3])


@pytest.mark.parametrize(
    ("value", "name"),
    [
        (object(), "object"),
        ({1, 2}, "set"),
        (1 + 2j, "complex"),
        ([1, [frozenset()]], "frozenset"),
        ({"k": object()}, "object"),
    ],
)
def test_values_without_a_godot_type_are_type_errors(value: object, name: str) -> None:
    with pytest.raises(TypeError, match=name):
        var_to_bytes(value)


def test_unsupported_array_type_code_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="'h'"):
        var_to_bytes(array.array("h", [1]))


@pytest.mark.parametrize("value", [2**63, -(2**63) - 1, [2**64]])
def test_int_beyond_64_bits_is_a_value_error(value: object) -> None:
    with pytest.raises(ValueError, match="64-bit"):
        var_to_bytes(value)


def test_full_objects_changes_nothing() -> None:
    assert var_to_bytes([1, "a"], full_objects=True) == var_to_bytes([1, "a"])
