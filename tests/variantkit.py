"""Shared pieces of the codec tests.

An equality that sees NaN and element types, a list with every type once, and hypothesis
strategies for values with a Godot type.
"""

from __future__ import annotations

import array
import math
from typing import Any

import attrs
from hypothesis import strategies as st

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


def same(a: object, b: object) -> bool:
    """Equality that holds NaN equal to NaN, and checks element types of containers."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        assert isinstance(b, float)
        return (math.isnan(a) and math.isnan(b)) or a == b
    if isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple))
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        assert isinstance(b, dict)
        pairs = zip(a.items(), b.items(), strict=False)
        return len(a) == len(b) and all(
            same(ka, kb) and same(va, vb) for (ka, va), (kb, vb) in pairs
        )
    if isinstance(a, array.array):
        assert isinstance(b, array.array)
        return a.typecode == b.typecode and a.tobytes() == b.tobytes()
    if attrs.has(type(a)):
        return same(attrs.astuple(a, recurse=False), attrs.astuple(b, recurse=False))
    return a == b


BASIS = Basis(Vector3(1, 2, 3), Vector3(4, 5, 6), Vector3(7, 8, 9))
EVERY_TYPE = [
    None,
    True,
    False,
    0,
    -7,
    2**31,
    -(2**63),
    1.5,
    0.1,
    -0.0,
    math.inf,
    math.nan,
    "",
    "héllo €",
    Vector2(1, 2.5),
    Vector2i(-1, 2),
    Rect2(Vector2(1, 2), Vector2(3, 4)),
    Rect2i(Vector2i(1, 2), Vector2i(3, 4)),
    Vector3(1, 2, 3),
    Vector3i(1, 2, 3),
    Transform2D(Vector2(1, 0), Vector2(0, 1), Vector2(5, 6)),
    Vector4(1, 2, 3, 4),
    Vector4i(1, 2, 3, 4),
    Plane(Vector3(0, 1, 0), 2),
    Quaternion(0, 0, 0, 1),
    AABB(Vector3(1, 2, 3), Vector3(4, 5, 6)),
    BASIS,
    Transform3D(BASIS, Vector3(10, 11, 12)),
    Projection(Vector4(1, 2, 3, 4), Vector4(5, 6, 7, 8), Vector4(9, 0, 1, 2), Vector4(3, 4, 5, 6)),
    Color(1, 0.5, 0.25),
    StringName("name"),
    NodePath("/root/Main/Player:position:x"),
    NodePath(""),
    {},
    [],
    b"",
    b"\x00\x01\x02\x03\x04",
    array.array("i", [1, -2, 3]),
    array.array("q", [2**40, -1]),
    array.array("f", [1.5, -0.25]),
    array.array("d", [0.1, math.pi]),
    PackedStringArray(["", "a", "héllo"]),
    PackedVector2Array([Vector2(1, 2), Vector2(3, 4)]),
    PackedVector3Array([Vector3(1, 2, 3)]),
    PackedColorArray([Color(1, 0, 0), Color(0, 0, 1, 0.5)]),
    PackedVector4Array([Vector4(1, 2, 3, 4)]),
    # Nested containers: Array in Dictionary in Array, Dictionaries keyed by value classes.
    [1, {"a": [2, {"b": []}], StringName("c"): {}}, [[[]]]],
    {Vector2i(1, 2): [Vector3(1, 2, 3)], 5: {"x": None}, "s": PackedStringArray(["q"])},
]


# Hypothesis strategies for values with a Godot type ---------------------------------------

reals = st.floats(width=32)  # float vectors carry 32-bit floats
int32s = st.integers(-(2**31), 2**31 - 1)
texts = st.text(
    st.characters(blacklist_categories=["Cs"], blacklist_characters="\0"), max_size=20
).filter(lambda s: not s.startswith("\ufeff"))  # Godot drops a NUL's tail and a BOM
part = st.text(
    st.characters(blacklist_categories=["Cs"], blacklist_characters="\0/:"),
    min_size=1,
    max_size=8,
).filter(lambda s: not s.startswith("\ufeff"))
vector2 = st.builds(Vector2, reals, reals)
vector3 = st.builds(Vector3, reals, reals, reals)
vector4 = st.builds(Vector4, reals, reals, reals, reals)
color = st.builds(Color, reals, reals, reals, reals)
basis = st.builds(Basis, vector3, vector3, vector3)
node_path = st.builds(
    NodePath.from_parts, st.lists(part, max_size=3), st.lists(part, max_size=3), st.booleans()
)


def typed_array(code: str, elements: st.SearchStrategy[Any]) -> st.SearchStrategy[array.array[Any]]:
    return st.lists(elements, max_size=6).map(lambda items: array.array(code, items))


leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(),
    texts,
    st.binary(max_size=9),
    vector2,
    st.builds(Vector2i, int32s, int32s),
    st.builds(Rect2, vector2, vector2),
    st.builds(Rect2i, st.builds(Vector2i, int32s, int32s), st.builds(Vector2i, int32s, int32s)),
    vector3,
    st.builds(Vector3i, int32s, int32s, int32s),
    st.builds(Transform2D, vector2, vector2, vector2),
    vector4,
    st.builds(Vector4i, int32s, int32s, int32s, int32s),
    st.builds(Plane, vector3, reals),
    st.builds(Quaternion, reals, reals, reals, reals),
    st.builds(AABB, vector3, vector3),
    basis,
    st.builds(Transform3D, basis, vector3),
    st.builds(Projection, vector4, vector4, vector4, vector4),
    color,
    st.builds(StringName, texts),
    node_path,
    typed_array("i", int32s),
    typed_array("q", st.integers(-(2**63), 2**63 - 1)),
    typed_array("f", reals),
    typed_array("d", st.floats()),
    st.builds(PackedStringArray, st.lists(texts, max_size=4)),
    st.builds(PackedVector2Array, st.lists(vector2, max_size=4)),
    st.builds(PackedVector3Array, st.lists(vector3, max_size=4)),
    st.builds(PackedColorArray, st.lists(color, max_size=4)),
    st.builds(PackedVector4Array, st.lists(vector4, max_size=4)),
)
# Keys Python keeps apart as Godot does (no bool/int/float mix: True == 1 == 1.0 in Python).
keys = st.one_of(
    texts, st.integers(-(2**63), 2**63 - 1), st.builds(StringName, texts), vector2, node_path
)
values = st.recursive(
    leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=5), st.dictionaries(keys, children, max_size=5)
    ),
    max_leaves=30,
)
