"""Decoding Godot 4 variants from bytes, for hostile input (no I/O, no trio).

Theory of operation
-------------------
:func:`decode_variant` reads one header at a time in a loop; it never recurses, so
nesting is bounded by :data:`~trionet._variant_format.MAX_DEPTH` (Godot's own limit)
instead of by Python's recursion limit.  A non-empty Array or Dictionary pushes a frame
that collects its elements; every finished value goes to the innermost frame, and a frame
that has all its elements becomes a finished value in turn.  When no frame is left, the
value is the result.

Every length and count is checked against the bytes left *before* anything is
allocated: an element takes at least 4 bytes (a Dictionary entry 8), a packed array
exactly its item size times its count.  So a claimed count can never make the decoder
allocate more than the input justifies, and a billion-entry claim fails at once.

Where Godot's decoder fails, this one raises :class:`~trionet._variant_format.DecodeError`;
it also refuses (with the same error) what trionet never accepts from the network:
Objects, RIDs, Callables, Signals and containers typed with a class or a script.
"""

from __future__ import annotations

import array
import struct
import sys
from collections.abc import Callable, Iterable

from . import _godot_types as gt
from . import _variant_format as fmt
from ._variant_format import DecodeError

__all__ = ["decode_variant"]

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
_F32 = fmt.F32

Reader = Callable[[bytes, int, int, int], tuple[object, int]]


def _need(end: int, pos: int, size: int, what: str) -> None:
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


def _string(data: bytes, pos: int, end: int) -> tuple[str, int]:
    """A u32 length, UTF-8 bytes and padding; Godot stops at a NUL and skips a BOM."""
    _need(end, pos, 4, "string length")
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
    _need(end, pos, 4, f"{what} count")
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
    _need(end, pos, 4, "bool")
    return _unpack_u32(data, pos)[0] != 0, pos + 4


def _read_int(data: bytes, pos: int, end: int, header: int) -> tuple[object, int]:
    if header & fmt.FLAG_64:
        _need(end, pos, 8, "int64")
        return _I64.unpack_from(data, pos)[0], pos + 8
    _need(end, pos, 4, "int32")
    return _unpack_i32(data, pos)[0], pos + 4


def _read_float(data: bytes, pos: int, end: int, header: int) -> tuple[object, int]:
    if header & fmt.FLAG_64:
        _need(end, pos, 8, "double")
        return _F64.unpack_from(data, pos)[0], pos + 8
    _need(end, pos, 4, "float")
    return fmt.F32.unpack_from(data, pos)[0], pos + 4


def _read_string(data: bytes, pos: int, end: int, header: int) -> tuple[object, int]:
    return _string(data, pos, end)


def _read_string_name(data: bytes, pos: int, end: int, header: int) -> tuple[object, int]:
    text, pos = _string(data, pos, end)
    return gt.StringName(text), pos


def _read_vector2(data: bytes, pos: int, end: int, header: int) -> tuple[object, int]:
    c, pos = _reals(data, pos, end, header, 2)
    return gt.Vector2(*c), pos


def _read_vector2i(data: bytes, pos: int, end: int, header: int) -> tuple[object, int]:
    c, pos = _ints(data, pos, end, 2)
    return gt.Vector2i(*c), pos


def _read_rect2(data: bytes, pos: int, end: int, header: int) -> tuple[object, int]:
    c, pos = _reals(data, pos, end, header, 4)
    return gt.Rect2(gt.Vector2(c[0], c[1]), gt.Vector2(c[2], c[3])), pos


def _read_rect2i(data: bytes, pos: int, end: int, header: int) -> tuple[object, int]:
    c, pos = _ints(data, pos, end, 4)
    return gt.Rect2i(gt.Vector2i(c[0], c[1]), gt.Vector2i(c[2], c[3])), pos


def _read_vector3(data: bytes, pos: int, end: int, header: int) -> tuple[object, int]:
    c, pos = _reals(data, pos, end, header, 3)
    return gt.Vector3(*c), pos


def _read_vector3i(data: bytes, pos: int, end: int, header: int) -> tuple[object, int]:
    c, pos = _ints(data, pos, end, 3)
    return gt.Vector3i(*c), pos


def _read_transform2d(data: bytes, pos: int, end: int, header: int) -> tuple[object, int]:
    c, pos = _reals(data, pos, end, header, 6)
    vectors = (gt.Vector2(c[0], c[1]), gt.Vector2(c[2], c[3]), gt.Vector2(c[4], c[5]))
    return gt.Transform2D(*vectors), pos


def _read_vector4(data: bytes, pos: int, end: int, header: int) -> tuple[object, int]:
    c, pos = _reals(data, pos, end, header, 4)
    return gt.Vector4(*c), pos


def _read_vector4i(data: bytes, pos: int, end: int, header: int) -> tuple[object, int]:
    c, pos = _ints(data, pos, end, 4)
    return gt.Vector4i(*c), pos


def _read_plane(data: bytes, pos: int, end: int, header: int) -> tuple[object, int]:
    c, pos = _reals(data, pos, end, header, 4)
    return gt.Plane(gt.Vector3(c[0], c[1], c[2]), c[3]), pos


def _read_quaternion(data: bytes, pos: int, end: int, header: int) -> tuple[object, int]:
    c, pos = _reals(data, pos, end, header, 4)
    return gt.Quaternion(*c), pos


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
    return gt.Color(*c), pos


def _read_node_path(data: bytes, pos: int, end: int, header: int) -> tuple[object, int]:
    _need(end, pos, 12, "NodePath header")
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
        part, pos = _string(data, pos, end)
        if not part or "/" in part or ":" in part:
            raise DecodeError(f"NodePath part {part!r} cannot be written as a path")
        parts.append(part)
    path = gt.NodePath.from_parts(parts[:name_count], parts[name_count:], bool(flags & 1))
    return path, pos


def _read_byte_array(data: bytes, pos: int, end: int, header: int) -> tuple[object, int]:
    count, pos = _count(data, pos, end, 1, "PackedByteArray")
    padded = count + (-count & 3)
    _need(end, pos, padded, "PackedByteArray padding")
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
        text, pos = _string(data, pos, end)
        texts.append(text)
    return gt.PackedStringArray(tuple(texts)), pos


def _vector_array_reader(
    n: int,
    element: Callable[..., object],
    packed: Callable[[Iterable[object]], object],
    wide_allowed: bool = True,
) -> Reader:
    what = getattr(packed, "__name__", "packed array")

    def read(data: bytes, pos: int, end: int, header: int) -> tuple[object, int]:
        item = _STRUCTS[n, wide_allowed and bool(header & fmt.FLAG_64)]
        count, pos = _count(data, pos, end, item.size, what)
        stop = pos + count * item.size
        rows = item.iter_unpack(memoryview(data)[pos:stop])
        return packed(tuple([element(*row) for row in rows])), stop

    return read


def _refuse(what: str) -> Reader:
    def read(data: bytes, pos: int, end: int, header: int) -> tuple[object, int]:
        raise DecodeError(f"{what} at offset {pos - 4} refused: trionet never decodes {what}s")

    return read


_READERS: list[Reader | None] = [None] * 256
_READERS[: fmt.VARIANT_MAX] = [
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


def _container_type(data: bytes, pos: int, end: int, kind: int) -> int:
    """Skip a typed container's element type (Godot 4.3+); refuse class and script types."""
    if kind == fmt.KIND_BUILTIN:
        _need(end, pos, 4, "container element type")
        element_type = _unpack_u32(data, pos)[0]
        if element_type >= fmt.VARIANT_MAX:
            raise DecodeError(f"unknown container element type {element_type} at offset {pos}")
        if element_type == fmt.OBJECT:
            raise DecodeError(f"container of Objects at offset {pos} refused")
        return pos + 4
    raise DecodeError(f"container typed with a class or script at offset {pos} refused")


def _finish(items: list[object], is_dict: bool) -> object:
    """The value of a container whose elements are all read."""
    if not is_dict:
        return items
    pairs = iter(items)
    try:
        # Later duplicates replace earlier ones, as Godot's ``d[key] = value`` does.
        return dict(zip(pairs, pairs, strict=True))
    except TypeError:
        raise DecodeError("a Dictionary key is an Array or Dictionary (not hashable)") from None


def _container(data: bytes, pos: int, end: int, header: int, is_dict: bool) -> tuple[int, int]:
    """An Array's or Dictionary's element types (skipped) and count: ``(items, pos)``."""
    start = pos - 4
    if is_dict:
        if (key_kind := (header >> fmt.TYPED_KEY_SHIFT) & 3) != fmt.KIND_NONE:
            pos = _container_type(data, pos, end, key_kind)
        kind = (header >> fmt.TYPED_VALUE_SHIFT) & 3
    else:
        kind = (header >> fmt.TYPED_ARRAY_SHIFT) & 3
    if kind != fmt.KIND_NONE:
        pos = _container_type(data, pos, end, kind)
    _need(end, pos, 4, "element count")
    count = _unpack_u32(data, pos)[0] & fmt.COUNT_MASK
    pos += 4
    items = 2 * count if is_dict else count
    if items * 4 > end - pos:  # every element takes at least a 4-byte header
        raise DecodeError(
            f"container at offset {start} claims {count} elements; only {end - pos} bytes remain"
        )
    return items, pos


def decode_variant(data: bytes, pos: int = 0) -> tuple[object, int]:
    """Decode the variant that starts at ``data[pos]``.

    Args:
        data: The encoded bytes.
        pos: Where the variant starts.

    Returns:
        ``(value, end)``: the value and the offset just past it (bytes after it are not
        looked at).

    Raises:
        DecodeError: the bytes are not one acceptable variant; the message says why.
    """
    try:
        return _decode(data, pos)
    except struct.error:  # a fixed-size read past the end
        raise DecodeError("truncated data") from None


def _decode(data: bytes, pos: int) -> tuple[object, int]:
    # The hot path: the commonest types are read inline, and the innermost container is
    # kept in locals (items, remaining, is_dict); outer ones wait on ``stack``.
    end = len(data)
    readers = _READERS
    unpack_u32 = _unpack_u32
    stack: list[tuple[list[object], int, bool]] = []
    # The innermost unfinished container: its elements so far, how many are still to
    # read (a Dictionary counts keys and values) and its kind.  The top value goes into
    # a one-element root list, so every value has a container to go to.
    items: list[object] = []
    remaining = 1
    is_dict = False
    value: object
    while True:
        header = unpack_u32(data, pos)[0]
        type_number = header & 0xFF
        pos += 4
        if type_number == 4:  # STRING
            size = unpack_u32(data, pos)[0]
            pos += 4
            stop = pos + size
            if stop + (-size & 3) > end:
                raise DecodeError(f"string of {size} bytes at offset {pos} exceeds the data")
            try:
                value = data[pos:stop].decode()
            except UnicodeDecodeError:
                value, _ = _string(data, pos - 4, end)  # it may stop at a NUL
            else:
                if "\0" in value or value[:1] == "\ufeff":
                    value, _ = _string(data, pos - 4, end)
            pos = stop + (-size & 3)
        elif type_number == 2:  # INT
            if header & 0x10000:
                value = _I64.unpack_from(data, pos)[0]
                pos += 8
            else:
                value = _unpack_i32(data, pos)[0]
                pos += 4
        elif type_number == 3:  # FLOAT
            if header & 0x10000:
                value = _F64.unpack_from(data, pos)[0]
                pos += 8
            else:
                value = _F32.unpack_from(data, pos)[0]
                pos += 4
        elif type_number == 27 or type_number == 28:  # DICTIONARY, ARRAY
            dict_type = type_number == 27
            count, pos = _container(data, pos, end, header, dict_type)
            if count:
                # The new container sits at depth len(stack) (the root list is not a
                # level); its elements one below it.
                if len(stack) >= fmt.MAX_DEPTH:
                    raise DecodeError(f"nesting deeper than {fmt.MAX_DEPTH} levels")
                stack.append((items, remaining, is_dict))
                items, remaining, is_dict = [], count, dict_type
                continue
            value = {} if dict_type else []
        else:
            reader = readers[type_number]
            if reader is None:
                raise DecodeError(f"unknown type number {type_number} at offset {pos - 4}")
            value, pos = reader(data, pos, end, header)
        # Hand the value to the innermost container; finish the containers that fill up.
        items.append(value)
        remaining -= 1
        while not remaining:
            if not stack:  # the root list is full: it holds the result
                return items[0], pos
            value = _finish(items, is_dict)
            items, remaining, is_dict = stack.pop()
            items.append(value)
            remaining -= 1
