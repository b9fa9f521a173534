"""Frozen Python values for Godot's built-in types (no I/O, no trio).

Godot has value types that Python lacks (vectors, ``Color``, ``StringName``, the packed
arrays of vectors ...).  Each one is a frozen ``attrs`` class with slots, equality and a
hash, built positionally as in GDScript (``Vector2(1, 2)``, ``Color(1, 0, 0)``).  The
collections inside are tuples, so a value is frozen all the way down and can be a
``dict`` key, as Godot allows.

Components follow Godot's C++ types: the float forms hold Python ``float`` (an ``int`` is
converted), the integer forms (``Vector2i`` ...) hold ``int`` in the signed 32-bit range
and refuse anything else with ``ValueError``.  Godot stores float vectors in 32 bits (in a
standard build), so a component that is not exactly a 32-bit float is rounded when it is
encoded; values decoded from Godot's bytes are exact and encode back to the same bytes.

The codec (:mod:`trionet._variant`) maps these classes to Godot's type numbers.
"""

from __future__ import annotations

import numbers
import operator
from collections.abc import Iterable, Iterator
from typing import Generic, TypeVar, cast

import attrs

__all__ = [
    "AABB",
    "Basis",
    "Color",
    "NodePath",
    "PackedColorArray",
    "PackedStringArray",
    "PackedVector2Array",
    "PackedVector3Array",
    "PackedVector4Array",
    "Plane",
    "Projection",
    "Quaternion",
    "Rect2",
    "Rect2i",
    "StringName",
    "Transform2D",
    "Transform3D",
    "Vector2",
    "Vector2i",
    "Vector3",
    "Vector3i",
    "Vector4",
    "Vector4i",
]

_INT32_MIN = -(1 << 31)
_INT32_MAX = (1 << 31) - 1
#: How many elements of a packed array ``repr`` shows before eliding the rest.
_REPR_ITEMS = 8


def _real(value: object) -> float:
    """Convert a float component: ``float`` or ``int`` (not ``bool``) to ``float``."""
    if type(value) is float:
        return value
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    raise TypeError(f"expected a float component, got {type(value).__name__}")


def _int32(value: object) -> int:
    """Check an integer component: an ``int`` (not ``bool``) in the signed 32-bit range."""
    if type(value) is not int:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise TypeError(f"expected an int component, got {type(value).__name__}")
        value = operator.index(value)
    if not _INT32_MIN <= value <= _INT32_MAX:
        raise ValueError(f"integer component {value} is outside the signed 32-bit range")
    return value


def _text(value: object) -> str:
    """Check a string field."""
    if not isinstance(value, str):
        raise TypeError(f"expected a str, got {type(value).__name__}")
    return str(value)


# Vectors --------------------------------------------------------------------------------


@attrs.frozen
class Vector2:
    """Godot's ``Vector2``: two float components."""

    x: float = attrs.field(converter=_real)
    y: float = attrs.field(converter=_real)


@attrs.frozen
class Vector2i:
    """Godot's ``Vector2i``: two signed 32-bit integer components."""

    x: int = attrs.field(converter=_int32)
    y: int = attrs.field(converter=_int32)


@attrs.frozen
class Vector3:
    """Godot's ``Vector3``: three float components."""

    x: float = attrs.field(converter=_real)
    y: float = attrs.field(converter=_real)
    z: float = attrs.field(converter=_real)


@attrs.frozen
class Vector3i:
    """Godot's ``Vector3i``: three signed 32-bit integer components."""

    x: int = attrs.field(converter=_int32)
    y: int = attrs.field(converter=_int32)
    z: int = attrs.field(converter=_int32)


@attrs.frozen
class Vector4:
    """Godot's ``Vector4``: four float components."""

    x: float = attrs.field(converter=_real)
    y: float = attrs.field(converter=_real)
    z: float = attrs.field(converter=_real)
    w: float = attrs.field(converter=_real)


@attrs.frozen
class Vector4i:
    """Godot's ``Vector4i``: four signed 32-bit integer components."""

    x: int = attrs.field(converter=_int32)
    y: int = attrs.field(converter=_int32)
    z: int = attrs.field(converter=_int32)
    w: int = attrs.field(converter=_int32)


# Shapes and transforms ------------------------------------------------------------------


@attrs.frozen
class Rect2:
    """Godot's ``Rect2``: a ``position`` and a ``size``, both :class:`Vector2`."""

    position: Vector2 = attrs.field(validator=attrs.validators.instance_of(Vector2))
    size: Vector2 = attrs.field(validator=attrs.validators.instance_of(Vector2))


@attrs.frozen
class Rect2i:
    """Godot's ``Rect2i``: a ``position`` and a ``size``, both :class:`Vector2i`."""

    position: Vector2i = attrs.field(validator=attrs.validators.instance_of(Vector2i))
    size: Vector2i = attrs.field(validator=attrs.validators.instance_of(Vector2i))


@attrs.frozen
class Plane:
    """Godot's ``Plane``: a ``normal`` (:class:`Vector3`) and a distance ``d``."""

    normal: Vector3 = attrs.field(validator=attrs.validators.instance_of(Vector3))
    d: float = attrs.field(converter=_real)


@attrs.frozen
class Quaternion:
    """Godot's ``Quaternion``: components ``x, y, z, w`` (``w`` is the real part)."""

    x: float = attrs.field(converter=_real)
    y: float = attrs.field(converter=_real)
    z: float = attrs.field(converter=_real)
    w: float = attrs.field(converter=_real)


@attrs.frozen
class AABB:
    """Godot's ``AABB``: a ``position`` and a ``size``, both :class:`Vector3`."""

    position: Vector3 = attrs.field(validator=attrs.validators.instance_of(Vector3))
    size: Vector3 = attrs.field(validator=attrs.validators.instance_of(Vector3))


@attrs.frozen
class Transform2D:
    """Godot's ``Transform2D``: the ``x`` and ``y`` axis columns and the ``origin``."""

    x: Vector2 = attrs.field(validator=attrs.validators.instance_of(Vector2))
    y: Vector2 = attrs.field(validator=attrs.validators.instance_of(Vector2))
    origin: Vector2 = attrs.field(validator=attrs.validators.instance_of(Vector2))


@attrs.frozen
class Basis:
    """Godot's ``Basis``: the ``x``, ``y`` and ``z`` axis columns, as ``Basis(x, y, z)``."""

    x: Vector3 = attrs.field(validator=attrs.validators.instance_of(Vector3))
    y: Vector3 = attrs.field(validator=attrs.validators.instance_of(Vector3))
    z: Vector3 = attrs.field(validator=attrs.validators.instance_of(Vector3))


@attrs.frozen
class Transform3D:
    """Godot's ``Transform3D``: a :class:`Basis` and an ``origin`` (:class:`Vector3`)."""

    basis: Basis = attrs.field(validator=attrs.validators.instance_of(Basis))
    origin: Vector3 = attrs.field(validator=attrs.validators.instance_of(Vector3))


@attrs.frozen
class Projection:
    """Godot's ``Projection``: four :class:`Vector4` columns ``x, y, z, w``."""

    x: Vector4 = attrs.field(validator=attrs.validators.instance_of(Vector4))
    y: Vector4 = attrs.field(validator=attrs.validators.instance_of(Vector4))
    z: Vector4 = attrs.field(validator=attrs.validators.instance_of(Vector4))
    w: Vector4 = attrs.field(validator=attrs.validators.instance_of(Vector4))


# Misc -----------------------------------------------------------------------------------


@attrs.frozen
class Color:
    """Godot's ``Color``: float components ``r, g, b`` and ``a`` (default 1, opaque).

    Godot always sends colors in 32-bit floats, also in double-precision builds.
    """

    r: float = attrs.field(converter=_real)
    g: float = attrs.field(converter=_real)
    b: float = attrs.field(converter=_real)
    a: float = attrs.field(default=1.0, converter=_real)


@attrs.frozen
class StringName:
    """Godot's ``StringName`` (``&"name"`` in GDScript): a string with its own type.

    It is not equal to the plain ``str`` it holds, so a Dictionary keyed by StringName
    keeps its keys' type across a round trip.
    """

    value: str = attrs.field(converter=_text)


@attrs.frozen
class NodePath:
    """Godot's ``NodePath`` (``^"path"`` in GDScript), held as its text.

    The text has Godot's syntax: names separated by ``/`` (a leading ``/`` makes the
    path absolute), then optional subnames each after a ``:`` (``"Player/Sprite:modulate"``).
    Godot sends the names and subnames separately; a decoded NodePath holds the text
    Godot would print for it.
    """

    value: str = attrs.field(converter=_text)

    def parts(self) -> tuple[tuple[str, ...], tuple[str, ...], bool]:
        """Split the path as Godot does.

        Returns:
            ``(names, subnames, absolute)``: empty names (``"a//b"``) are skipped, and a
            trailing ``:`` is allowed, as in Godot.

        Raises:
            ValueError: an empty subname in the middle (``"a::b"``), which Godot refuses.
        """
        text = self.value
        absolute = text.startswith("/")
        path, colon, rest = text.partition(":")
        subnames: tuple[str, ...] = ()
        if colon:
            pieces = rest.split(":")
            if pieces[-1] == "":
                pieces.pop()
            if "" in pieces:
                raise ValueError(f"invalid NodePath {text!r}: empty subname")
            subnames = tuple(pieces)
        names = tuple(name for name in path.split("/") if name)
        return names, subnames, absolute

    @classmethod
    def from_parts(cls, names: Iterable[str], subnames: Iterable[str], absolute: bool) -> NodePath:
        """Build the NodePath whose text Godot prints for these parts.

        Args:
            names: The node names, in order.
            subnames: The property subnames, in order.
            absolute: Whether the path starts at the scene root (a leading ``/``).

        Returns:
            The NodePath (``from_parts(("a", "b"), ("c",), True).value == "/a/b:c"``).
        """
        text = ("/" if absolute else "") + "/".join(names)
        text += "".join(":" + subname for subname in subnames)
        return cls(text)


# Packed arrays --------------------------------------------------------------------------

_T = TypeVar("_T")


def _short_repr(values: tuple[object, ...]) -> str:
    """Show a long packed array's first elements and its length, not all of it."""
    if len(values) <= _REPR_ITEMS:
        return repr(values)
    shown = ", ".join(repr(value) for value in values[:_REPR_ITEMS])
    return f"({shown}, ... {len(values)} items)"


class _Packed(Generic[_T]):
    """Sequence behaviour shared by the packed arrays (``len``, iteration, indexing)."""

    __slots__ = ()
    values: tuple[_T, ...]

    def __len__(self) -> int:
        return len(self.values)

    def __iter__(self) -> Iterator[_T]:
        return iter(self.values)

    def __getitem__(self, index: int) -> _T:
        return self.values[index]


def _checked(values: Iterable[object], kind: type[_T]) -> tuple[_T, ...]:
    """Take any iterable to a tuple, checking that every element is a ``kind``."""
    items = values if type(values) is tuple else tuple(values)  # a tuple is not copied
    for item in items:
        if not isinstance(item, kind):
            raise TypeError(f"expected {kind.__name__} elements, got {type(item).__name__}")
    return cast("tuple[_T, ...]", items)  # every element was checked just above


def _strings(values: Iterable[object]) -> tuple[str, ...]:
    """Converter for :class:`PackedStringArray`."""
    return _checked(values, str)


def _vector2s(values: Iterable[object]) -> tuple[Vector2, ...]:
    """Converter for :class:`PackedVector2Array`."""
    return _checked(values, Vector2)


def _vector3s(values: Iterable[object]) -> tuple[Vector3, ...]:
    """Converter for :class:`PackedVector3Array`."""
    return _checked(values, Vector3)


def _vector4s(values: Iterable[object]) -> tuple[Vector4, ...]:
    """Converter for :class:`PackedVector4Array`."""
    return _checked(values, Vector4)


def _colors(values: Iterable[object]) -> tuple[Color, ...]:
    """Converter for :class:`PackedColorArray`."""
    return _checked(values, Color)


@attrs.frozen
class PackedStringArray(_Packed[str]):
    """Godot's ``PackedStringArray``, built from any iterable of ``str``."""

    values: tuple[str, ...] = attrs.field(default=(), converter=_strings, repr=_short_repr)


@attrs.frozen
class PackedVector2Array(_Packed[Vector2]):
    """Godot's ``PackedVector2Array``, built from any iterable of :class:`Vector2`."""

    values: tuple[Vector2, ...] = attrs.field(default=(), converter=_vector2s, repr=_short_repr)


@attrs.frozen
class PackedVector3Array(_Packed[Vector3]):
    """Godot's ``PackedVector3Array``, built from any iterable of :class:`Vector3`."""

    values: tuple[Vector3, ...] = attrs.field(default=(), converter=_vector3s, repr=_short_repr)


@attrs.frozen
class PackedVector4Array(_Packed[Vector4]):
    """Godot's ``PackedVector4Array`` (Godot 4.3+), from any iterable of :class:`Vector4`."""

    values: tuple[Vector4, ...] = attrs.field(default=(), converter=_vector4s, repr=_short_repr)


@attrs.frozen
class PackedColorArray(_Packed[Color]):
    """Godot's ``PackedColorArray``, built from any iterable of :class:`Color`."""

    values: tuple[Color, ...] = attrs.field(default=(), converter=_colors, repr=_short_repr)
