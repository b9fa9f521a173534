"""The Godot value classes: frozen, hashable, positional, validated at the boundary."""

from __future__ import annotations

import enum

import attrs
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

ALL_CLASSES = [
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
]


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=lambda c: c.__name__)
def test_classes_are_frozen_slotted_and_documented(cls: type) -> None:
    assert attrs.has(cls)
    assert "__slots__" in cls.__dict__
    assert cls.__doc__


def test_positional_construction_as_in_gdscript() -> None:
    assert Vector2(1, 2) == Vector2(x=1.0, y=2.0)
    assert Color(1, 0, 0) == Color(1.0, 0.0, 0.0, 1.0)
    assert Rect2(Vector2(0, 0), Vector2(1, 1)).size == Vector2(1, 1)


def test_values_are_immutable_and_hashable() -> None:
    v = Vector3(1, 2, 3)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        v.x = 5  # type: ignore[misc]
    assert {v: "a"}[Vector3(1, 2, 3)] == "a"
    packed = PackedVector2Array([Vector2(1, 2)])
    assert hash(packed) == hash(PackedVector2Array((Vector2(1, 2),)))


def test_float_components_are_floats() -> None:
    v = Vector2(1, 2)
    assert type(v.x) is float
    assert type(Color(1, 0, 0).a) is float


@pytest.mark.parametrize("bad", ["1", None, True, 1j])
def test_float_components_refuse_non_numbers(bad: object) -> None:
    with pytest.raises(TypeError, match="float component"):
        Vector2(bad, 0)


def test_integer_components_validate() -> None:
    class Small(enum.IntEnum):
        ONE = 1

    assert Vector2i(Small.ONE, 2) == Vector2i(1, 2)
    assert type(Vector2i(Small.ONE, 2).x) is int
    with pytest.raises(TypeError, match="int component"):
        Vector2i(1.5, 2)
    with pytest.raises(TypeError, match="int component"):
        Vector3i(True, 2, 3)
    with pytest.raises(ValueError, match="32-bit"):
        Vector4i(2**31, 0, 0, 0)
    with pytest.raises(ValueError, match="32-bit"):
        Vector2i(-(2**31) - 1, 0)


def test_nested_fields_check_their_types() -> None:
    with pytest.raises(TypeError):
        Rect2((0, 0), Vector2(1, 1))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Rect2i(Vector2(0, 0), Vector2(1, 1))  # type: ignore[arg-type]


def test_packed_arrays_take_any_iterable_and_hold_tuples() -> None:
    strings = PackedStringArray(s for s in ["a", "b"])
    assert strings.values == ("a", "b")
    assert len(strings) == 2
    assert list(strings) == ["a", "b"]
    assert strings[1] == "b"
    colors = PackedColorArray([Color(1, 1, 1)])
    assert isinstance(colors.values, tuple)
    with pytest.raises(TypeError, match="Vector2"):
        PackedVector2Array([Vector3(1, 2, 3)])
    with pytest.raises(TypeError, match="str"):
        PackedStringArray([1])


def test_long_packed_array_repr_is_trimmed() -> None:
    text = repr(PackedVector2Array(Vector2(i, i) for i in range(1000)))
    assert "1000 items" in text
    assert len(text) < 400


def test_string_name_is_not_a_str() -> None:
    assert StringName("a") != "a"
    with pytest.raises(TypeError):
        StringName(5)


def test_node_path_parts_follow_godot() -> None:
    assert NodePath("/root/Main:position:x").parts() == (("root", "Main"), ("position", "x"), True)
    assert NodePath("a//b/").parts() == (("a", "b"), (), False)
    assert NodePath("a:b:").parts() == (("a",), ("b",), False)
    assert NodePath("").parts() == ((), (), False)
    with pytest.raises(ValueError, match="empty subname"):
        NodePath("a::b").parts()
    assert NodePath.from_parts(["a", "b"], ["c"], True) == NodePath("/a/b:c")
