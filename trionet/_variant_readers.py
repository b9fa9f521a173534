"""Readers for the Godot 4 variant types that are not containers (no I/O, no trio).

Each reader takes ``(data, pos, end, header)``, with ``pos`` just after the 4-byte header,
and returns ``(value, new pos)``, or raises :class:`~trionet._variant_format.DecodeError`
(a fixed-size read past the end raises ``struct.error``, which
:func:`~trionet._variant_decode.decode_variant` reports as truncation).  ``READERS`` maps
every type number to its reader; ``None`` marks the containers, which the decoding loop
reads itself, and unknown numbers.
"""

from __future__ import annotations

import array
import struct
import sys
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from . import _godot_types as gt
from . import _variant_format as fmt
from ._variant_format import DecodeError

__all__ = ["READERS", "maker", "need", "read_string", "words_of"]

_unpack_u32 = fmt.U32.unpack_from
_unpack_i32 = fmt.I32.unpack_from
_BIG_ENDIAN = sys.byteorder == "big"
# (count, double?) -> Struct, for the float math types.
_STRUCTS: dict[tuple[int, bool], struct.Struct] = {
    (n, wide): struct.Struct(f"<{n}{'d' if wide else 'f'}")
    for n in (2, 3, 4, 6, 9, 12, 16)
    for wide in (False, True)
}
_INTS = {n: struct.Struct(f"<{n}i") for n in (2, 3, 4)}
_I64 = struct.Struct("<q")
_F64 = struct.Struct("<d")

Reader = Callable[[bytes, int, int, int], tuple[object, int]]
#: Views of an input's 32-bit words: unsigned, signed, float32 (indexable by word).
Words = tuple[Sequence[int], Sequence[int], Sequence[float]]
#: ``make(components, i)``: a value object from ``components[i:i + n]``.
Maker = Callable[[Sequence[Any], int], Any]
_new = object.__new__


def words_of(data: bytes) -> Words:
    """The input's whole 32-bit words as little-endian u32, i32 and float32 views.

    A trailing partial word is left out: every variant is a multiple of 4 bytes long, so
    a value that would need it is truncated anyway (and reading it raises ``IndexError``).
    Views of ``data`` on a little-endian machine (no copy); swapped copies on a big-endian
    one.
    """
    whole = memoryview(data)[: len(data) & ~3]
    if not _BIG_ENDIAN:
        return whole.cast("I"), whole.cast("i"), whole.cast("f")
    views = array.array("I"), array.array("i"), array.array("f")
    for view in views:
        view.frombytes(whole)
        view.byteswap()
    return views


def maker(cls: type) -> Maker:
    """A fast constructor for a frozen value class of 2, 3 or 4 plain fields.

    ``make(components, i)`` sets the fields straight from ``components[i:]`` without
    running ``__init__``: for decoded components, which already have the exact type the
    field converters give (``float`` from a float read, ``int`` in the 32-bit range from
    an int32 read), it builds the same value twice as fast.
    """
    setters = [field.__set__ for field in (cls.__dict__[a.name] for a in attrs.fields(cls))]
    if len(setters) == 2:
        s0, s1 = setters

        def make2(c: Sequence[Any], i: int) -> Any:
            obj: Any = _new(cls)
            s0(obj, c[i])
            s1(obj, c[i + 1])
            return obj

        return make2
    if len(setters) == 3:
        s0, s1, s2 = setters

        def make3(c: Sequence[Any], i: int) -> Any:
            obj: Any = _new(cls)
            s0(obj, c[i])
            s1(obj, c[i + 1])
            s2(obj, c[i + 2])
            return obj

        return make3
    s0, s1, s2, s3 = setters

    def make4(c: Sequence[Any], i: int) -> Any:
        obj: Any = _new(cls)
        s0(obj, c[i])
        s1(obj, c[i + 1])
        s2(obj, c[i + 2])
        s3(obj, c[i + 3])
        return obj

    return make4


def need(end: int, pos: int, size: int, what: str) -> None:
    if end - pos < size:
        raise DecodeError(f"truncated {what} at offset {pos}: needs {size} bytes")


def _reals(data: bytes, pos: int, end: int, header: int, n: int) -> tuple[tuple[float, ...], int]:
    """``n`` float components: 32-bit, or doubles when FLAG_64 is set.

    A read past the end raises ``struct.error``, which :func:`decode_variant` reports.
    """
    packer = _STRUCTS[n, header & fmt.FLAG_64 != 0]
    return packer.unpack_from(data, pos), pos + packer.size


def _ints(data: bytes, pos: int, end: int, n: int) -> tuple[tuple[int, ...], int]:
    """``n`` signed 32-bit components (a short read raises ``struct.error``)."""
    return _INTS[n].unpack_from(data, pos), pos + 4 * n


def read_string(data: bytes, pos: int, end: int) -> tuple[str, int]:
    """A u32 length, UTF-8 bytes and padding; Godot stops at a NUL and skips a BOM."""
    need(end, pos, 4, "string length")
    size = _unpack_u32(data, pos)[0]
    pos += 4
    padded = size + (-size & 3)
    if size > fmt.INT32_MAX or padded > end - pos:
        raise DecodeError(f"string of {size} bytes at offset {pos} exceeds the data")
    stop = data.find(0, pos, pos + size)
    if stop < 0:
        stop = pos + size
    try:
        text = data[pos:stop].decode()
    except UnicodeDecodeError:
        raise DecodeError(f"invalid UTF-8 in string at offset {pos}") from None
    if text.startswith("\ufeff"):
        text = text[1:]
    return text, pos + padded


def _count(data: bytes, pos: int, end: int, item_size: int, what: str) -> tuple[int, int]:
    """A packed array's u32 count, checked against the bytes left for its items."""
    need(end, pos, 4, f"{what} count")
    count = _unpack_u32(data, pos)[0]
    pos += 4
    if count > fmt.INT32_MAX or count * item_size > end - pos:
        raise DecodeError(
            f"{what} at offset {pos} claims {count} items; only {end - pos} bytes remain"
        )
    return count, pos


# Scalar readers: (data, pos after the header, end, header) -> (value, new pos) -----------


def _read_nil(data: bytes, pos: int, end: int, header: int) -> tuple[object, int]:
    return None, pos


def _read_bool(data: bytes, pos: int, end: int, header: int) -> tuple[object, int]:
    need(end, pos, 4, "bool")
    return _unpack_u32(data, pos)[0] != 0, pos + 4


def _read_int(data: bytes, pos: int, end: int, header: int) -> tuple[object, int]:
    if header & fmt.FLAG_64:
        need(end, pos, 8, "int64")
        return _I64.unpack_from(data, pos)[0], pos + 8
    need(end, pos, 4, "int32")
    return _unpack_i32(data, pos)[0], pos + 4


def _read_float(data: bytes, pos: int, end: int, header: int) -> tuple[object, int]:
    if header & fmt.FLAG_64:
        need(end, pos, 8, "double")
        return _F64.unpack_from(data, pos)[0], pos + 8
    need(end, pos, 4, "float")
    return fmt.F32.unpack_from(data, pos)[0], pos + 4


def _read_string(data: bytes, pos: int, end: int, header: int) -> tuple[object, int]:
    return read_string(data, pos, end)


def _read_string_name(data: bytes, pos: int, end: int, header: int) -> tuple[object, int]:
    text, pos = read_string(data, pos, end)
    return gt.StringName(text), pos


def _read_vector2(data: bytes, pos: int, end: int, header: int) -> tuple[object, int]:
    c, pos = _reals(data, pos, end, header, 2)
    return _MAKE_VECTOR2(c, 0), pos


def _read_vector2i(data: bytes, pos: int, end: int, header: int) -> tuple[object, int]:
    c, pos = _ints(data, pos, end, 2)
    return _MAKE_VECTOR2I(c, 0), pos


def _read_rect2(data: bytes, pos: int, end: int, header: int) -> tuple[object, int]:
    c, pos = _reals(data, pos, end, header, 4)
    return gt.Rect2(gt.Vector2(c[0], c[1]), gt.Vector2(c[2], c[3])), pos


def _read_rect2i(data: bytes, pos: int, end: int, header: int) -> tuple[object, int]:
    c, pos = _ints(data, pos, end, 4)
    return gt.Rect2i(gt.Vector2i(c[0], c[1]), gt.Vector2i(c[2], c[3])), pos


def _read_vector3(data: bytes, pos: int, end: int, header: int) -> tuple[object, int]:
    c, pos = _reals(data, pos, end, header, 3)
    return _MAKE_VECTOR3(c, 0), pos


def _read_vector3i(data: bytes, pos: int, end: int, header: int) -> tuple[object, int]:
    c, pos = _ints(data, pos, end, 3)
    return _MAKE_VECTOR3I(c, 0), pos


def _read_transform2d(data: bytes, pos: int, end: int, header: int) -> tuple[object, int]:
    c, pos = _reals(data, pos, end, header, 6)
    vectors = (gt.Vector2(c[0], c[1]), gt.Vector2(c[2], c[3]), gt.Vector2(c[4], c[5]))
    return gt.Transform2D(*vectors), pos


def _read_vector4(data: bytes, pos: int, end: int, header: int) -> tuple[object, int]:
    c, pos = _reals(data, pos, end, header, 4)
    return _MAKE_VECTOR4(c, 0), pos


def _read_vector4i(data: bytes, pos: int, end: int, header: int) -> tuple[object, int]:
    c, pos = _ints(data, pos, end, 4)
    return _MAKE_VECTOR4I(c, 0), pos


def _read_plane(data: bytes, pos: int, end: int, header: int) -> tuple[object, int]:
    c, pos = _reals(data, pos, end, header, 4)
    return gt.Plane(gt.Vector3(c[0], c[1], c[2]), c[3]), pos


def _read_quaternion(data: bytes, pos: int, end: int, header: int) -> tuple[object, int]:
    c, pos = _reals(data, pos, end, header, 4)
    return _MAKE_QUATERNION(c, 0), pos


def _read_aabb(data: bytes, pos: int, end: int, header: int) -> tuple[object, int]:
    c, pos = _reals(data, pos, end, header, 6)
    return gt.AABB(gt.Vector3(c[0], c[1], c[2]), gt.Vector3(c[3], c[4], c[5])), pos


def _basis(rows: tuple[float, ...]) -> gt.Basis:
    # Nine components row by row; the Python value holds the columns.
    return gt.Basis(
        gt.Vector3(rows[0], rows[3], rows[6]),
        gt.Vector3(rows[1], rows[4], rows[7]),
        gt.Vector3(rows[2], rows[5], rows[8]),
    )


def _read_basis(data: bytes, pos: int, end: int, header: int) -> tuple[object, int]:
    c, pos = _reals(data, pos, end, header, 9)
    return _basis(c), pos


def _read_transform3d(data: bytes, pos: int, end: int, header: int) -> tuple[object, int]:
    c, pos = _reals(data, pos, end, header, 12)
    return gt.Transform3D(_basis(c[:9]), gt.Vector3(c[9], c[10], c[11])), pos


def _read_projection(data: bytes, pos: int, end: int, header: int) -> tuple[object, int]:
    c, pos = _reals(data, pos, end, header, 16)
    columns = (gt.Vector4(*c[i : i + 4]) for i in range(0, 16, 4))
    return gt.Projection(*columns), pos


def _read_color(data: bytes, pos: int, end: int, header: int) -> tuple[object, int]:
    # Colors are always 32-bit floats, whatever the flags say.
    c, pos = _reals(data, pos, end, 0, 4)
    return _MAKE_COLOR(c, 0), pos


def _read_node_path(data: bytes, pos: int, end: int, header: int) -> tuple[object, int]:
    need(end, pos, 12, "NodePath header")
    name_count, subname_count, flags = struct.unpack_from("<III", data, pos)
    if not name_count & 0x80000000:
        raise DecodeError(f"old-style NodePath at offset {pos} (Godot refuses it too)")
    name_count &= fmt.COUNT_MASK
    pos += 12
    if flags & 2:  # obsolete layout: the property is one more subname
        subname_count += 1
    if (name_count + subname_count) * 4 > end - pos:
        raise DecodeError(f"NodePath at offset {pos} claims more parts than the data holds")
    parts = []
    for _ in range(name_count + subname_count):
        part, pos = read_string(data, pos, end)
        if not part or "/" in part or ":" in part:
            raise DecodeError(f"NodePath part {part!r} cannot be written as a path")
        parts.append(part)
    path = gt.NodePath.from_parts(parts[:name_count], parts[name_count:], bool(flags & 1))
    return path, pos


def _read_byte_array(data: bytes, pos: int, end: int, header: int) -> tuple[object, int]:
    count, pos = _count(data, pos, end, 1, "PackedByteArray")
    padded = count + (-count & 3)
    need(end, pos, padded, "PackedByteArray padding")
    return data[pos : pos + count], pos + padded


def _numeric_reader(code: str, item_size: int, what: str) -> Reader:
    def read(data: bytes, pos: int, end: int, header: int) -> tuple[object, int]:
        count, pos = _count(data, pos, end, item_size, what)
        values = array.array(code)
        values.frombytes(data[pos : pos + count * item_size])
        if _BIG_ENDIAN:
            values.byteswap()
        return values, pos + count * item_size

    return read


def _read_string_array(data: bytes, pos: int, end: int, header: int) -> tuple[object, int]:
    count, pos = _count(data, pos, end, 4, "PackedStringArray")
    texts = []
    for _ in range(count):
        text, pos = read_string(data, pos, end)
        texts.append(text)
    return gt.PackedStringArray(tuple(texts)), pos


def _vector_array_reader(n: int, element: type, packed: type, wide_allowed: bool = True) -> Reader:
    what = packed.__name__
    make = maker(element)
    set_values = packed.__dict__["values"].__set__

    def read(data: bytes, pos: int, end: int, header: int) -> tuple[object, int]:
        item = _STRUCTS[n, wide_allowed and bool(header & fmt.FLAG_64)]
        count, pos = _count(data, pos, end, item.size, what)
        stop = pos + count * item.size
        flat = struct.unpack_from(f"<{count * n}{item.format[-1]}", data, pos)
        value: Any = _new(packed)
        set_values(value, tuple([make(flat, i) for i in range(0, count * n, n)]))
        return value, stop

    return read


def _refuse(what: str) -> Reader:
    def read(data: bytes, pos: int, end: int, header: int) -> tuple[object, int]:
        raise DecodeError(f"{what} at offset {pos - 4} refused: trionet never decodes {what}s")

    return read


_MAKE_VECTOR2 = maker(gt.Vector2)
_MAKE_VECTOR2I = maker(gt.Vector2i)
_MAKE_VECTOR3 = maker(gt.Vector3)
_MAKE_VECTOR3I = maker(gt.Vector3i)
_MAKE_VECTOR4 = maker(gt.Vector4)
_MAKE_VECTOR4I = maker(gt.Vector4i)
_MAKE_QUATERNION = maker(gt.Quaternion)
_MAKE_COLOR = maker(gt.Color)

READERS: list[Reader | None] = [None] * 256
READERS[: fmt.VARIANT_MAX] = [
    _read_nil,
    _read_bool,
    _read_int,
    _read_float,
    _read_string,
    _read_vector2,
    _read_vector2i,
    _read_rect2,
    _read_rect2i,
    _read_vector3,
    _read_vector3i,
    _read_transform2d,
    _read_vector4,
    _read_vector4i,
    _read_plane,
    _read_quaternion,
    _read_aabb,
    _read_basis,
    _read_transform3d,
    _read_projection,
    _read_color,
    _read_string_name,
    _read_node_path,
    _refuse("RID"),
    _refuse("Object"),
    _refuse("Callable"),
    _refuse("Signal"),
    None,  # DICTIONARY: handled by the loop
    None,  # ARRAY: handled by the loop
    _read_byte_array,
    _numeric_reader("i", 4, "PackedInt32Array"),
    _numeric_reader("q", 8, "PackedInt64Array"),
    _numeric_reader("f", 4, "PackedFloat32Array"),
    _numeric_reader("d", 8, "PackedFloat64Array"),
    _read_string_array,
    _vector_array_reader(2, gt.Vector2, gt.PackedVector2Array),
    _vector_array_reader(3, gt.Vector3, gt.PackedVector3Array),
    _vector_array_reader(4, gt.Color, gt.PackedColorArray, wide_allowed=False),
    _vector_array_reader(4, gt.Vector4, gt.PackedVector4Array),
]
