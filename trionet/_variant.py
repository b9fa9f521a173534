"""Godot 4's ``var_to_bytes`` / ``bytes_to_var``: the Variant codec, sans-I/O (no trio).

Python values map to Godot's types as follows (decoding gives the left column back):

=========================================  ==========================================
Python                                     Godot
=========================================  ==========================================
``None``                                   ``null`` (NIL)
``bool``                                   ``bool``
``int`` (signed 64-bit)                    ``int`` (32 bits on the wire when it fits)
``float``                                  ``float`` (32 bits when exact, else 64)
``str``                                    ``String``
``list`` (``tuple`` also encodes)          ``Array``
``dict``                                   ``Dictionary``
``bytes`` (``bytearray`` also encodes)     ``PackedByteArray``
``array.array`` ``'i'`` / ``'q'``          ``PackedInt32Array`` / ``PackedInt64Array``
``array.array`` ``'f'`` / ``'d'``          ``PackedFloat32Array`` / ``PackedFloat64Array``
:mod:`trionet._godot_types` classes        the Godot type of the same name
=========================================  ==========================================

Subclasses encode as their base (an ``IntEnum`` member as ``int``); ``array.array('l')``
encodes as PackedInt64Array where its items are 8 bytes.  No Python value maps to
``Object``, ``RID``, ``Callable`` or ``Signal``: trionet never sends objects, and refuses
them from the network.
"""

from __future__ import annotations

import array
import itertools
import math
import struct
import sys
from collections.abc import Callable, Iterator
from typing import Any

from . import _godot_types as gt
from . import _variant_format as fmt
from ._variant_decode import decode_variant
from ._variant_format import MAX_VAR_SIZE as MAX_VAR_SIZE
from ._variant_format import DecodeError, logger

__all__ = ["MAX_VAR_SIZE", "bytes_to_var", "var_to_bytes"]

_HEADER_U32 = fmt.HEADER_U32
_HEADER_I32 = struct.Struct("<Ii")
_HEADER_I64 = struct.Struct("<Iq")
_HEADER_F64 = struct.Struct("<Id")
_U32 = fmt.U32
_F32 = fmt.F32
_PADDING = fmt.PADDING
_INT32_MIN = -(1 << 31)
_INT32_MAX = (1 << 31) - 1
_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1
_BIG_ENDIAN = sys.byteorder == "big"
# Header + n 32-bit floats or ints, for the math types.
_REALS = {n: struct.Struct(f"<I{n}f") for n in (2, 3, 4, 6, 9, 12, 16)}
_INTS = {n: struct.Struct(f"<I{n}i") for n in (2, 3, 4)}
_NIL_BYTES = _U32.pack(fmt.NIL)
_TRUE_BYTES = _HEADER_U32.pack(fmt.BOOL, 1)
_FALSE_BYTES = _HEADER_U32.pack(fmt.BOOL, 0)
_FLOAT_HEADER = _U32.pack(fmt.FLOAT)


def _narrow(component: float) -> float:
    """What C's double-to-float cast gives for a component beyond float32's range: ±inf."""
    try:
        _F32.pack(component)
    except OverflowError:
        return math.copysign(math.inf, component)
    return component


def _reals(type_number: int, components: tuple[float, ...]) -> bytes:
    """Header and components as 32-bit floats, as a standard (single-precision) Godot does."""
    packer = _REALS[len(components)]
    try:
        return packer.pack(type_number, *components)
    except OverflowError:
        return packer.pack(type_number, *map(_narrow, components))


def _encode_int(value: int) -> bytes:
    if _INT32_MIN <= value <= _INT32_MAX:
        return _HEADER_I32.pack(fmt.INT, value)
    if _INT64_MIN <= value <= _INT64_MAX:
        return _HEADER_I64.pack(fmt.INT | fmt.FLAG_64, value)
    raise ValueError(f"int {value} does not fit Godot's signed 64-bit int")


def _encode_float(value: float) -> bytes:
    # Godot's rule: 32 bits when the double survives a round trip through float (so NaN,
    # which never compares equal, always takes 64 bits), else 64 bits with FLAG_64.
    try:
        packed = _F32.pack(value)
    except OverflowError:
        return _HEADER_F64.pack(fmt.FLOAT | fmt.FLAG_64, value)
    if _F32.unpack(packed)[0] == value:
        return _FLOAT_HEADER + packed
    return _HEADER_F64.pack(fmt.FLOAT | fmt.FLAG_64, value)


def _string_payload(text: str, terminated: bool = False) -> bytes:
    """u32 length, UTF-8 bytes (and a NUL for PackedStringArray elements), padding."""
    raw = text.encode()
    if terminated:
        raw += b"\0"
    return _U32.pack(len(raw)) + raw + _PADDING[-len(raw) & 3]


def _encode_str(value: str) -> bytes:
    raw = value.encode()
    return _HEADER_U32.pack(fmt.STRING, len(raw)) + raw + _PADDING[-len(raw) & 3]


# Why a cache: game-state messages repeat the same keys and names in every message and
# many times in one; a dict look-up is a third of the cost of encoding a short string.
# Only short strings are kept (at most _CACHED_STRINGS of at most _CACHED_LENGTH
# characters, a few hundred KiB at worst), and it is emptied when full.
#: Encoded String variants (header, length, UTF-8, padding) by their text.
_STRINGS: dict[str, bytes] = {}
_CACHED_STRINGS = 1024
_CACHED_LENGTH = 48


def _encode_plain_str(value: str) -> bytes:
    """A ``str`` (not a subclass) as a String variant, remembered when it is short."""
    encoded = _encode_str(value)
    if len(value) <= _CACHED_LENGTH:
        if len(_STRINGS) >= _CACHED_STRINGS:
            _STRINGS.clear()
        _STRINGS[value] = encoded
    return encoded


def _encode_bytes(value: bytes | bytearray) -> bytes:
    size = len(value)
    return _HEADER_U32.pack(fmt.PACKED_BYTE_ARRAY, size) + bytes(value) + _PADDING[-size & 3]


# (type code, item size) -> Godot type number.
_ARRAY_TYPES = {
    ("i", 4): fmt.PACKED_INT32_ARRAY,
    ("l", 4): fmt.PACKED_INT32_ARRAY,
    ("q", 8): fmt.PACKED_INT64_ARRAY,
    ("l", 8): fmt.PACKED_INT64_ARRAY,
    ("f", 4): fmt.PACKED_FLOAT32_ARRAY,
    ("d", 8): fmt.PACKED_FLOAT64_ARRAY,
}


def _encode_array(value: array.array[Any]) -> bytes:
    type_number = _ARRAY_TYPES.get((value.typecode, value.itemsize))
    if type_number is None:
        raise TypeError(
            f"array.array with type code {value.typecode!r} has no Godot type "
            "(use 'i', 'q', 'f' or 'd')"
        )
    if _BIG_ENDIAN:
        value = array.array(value.typecode, value)
        value.byteswap()
    return _HEADER_U32.pack(type_number, len(value)) + value.tobytes()


def _encode_string_name(value: gt.StringName) -> bytes:
    raw = value.value.encode()
    return _HEADER_U32.pack(fmt.STRING_NAME, len(raw)) + raw + _PADDING[-len(raw) & 3]


def _encode_node_path(value: gt.NodePath) -> bytes:
    names, subnames, absolute = value.parts()
    head = struct.pack(
        "<IIII", fmt.NODE_PATH, len(names) | 0x80000000, len(subnames), 1 if absolute else 0
    )
    return head + b"".join(_string_payload(part) for part in names + subnames)


def _encode_string_array(value: gt.PackedStringArray) -> bytes:
    parts = [_HEADER_U32.pack(fmt.PACKED_STRING_ARRAY, len(value.values))]
    parts.extend(_string_payload(text, terminated=True) for text in value.values)
    return b"".join(parts)


def _packed_reals(type_number: int, count: int, flat: list[float]) -> bytes:
    """A packed array of float vectors: header, count, then every component as float32."""
    packer = struct.Struct(f"<{len(flat)}f")
    try:
        body = packer.pack(*flat)
    except OverflowError:
        body = packer.pack(*map(_narrow, flat))
    return _HEADER_U32.pack(type_number, count) + body


def _encode_vector2_array(value: gt.PackedVector2Array) -> bytes:
    flat = [c for v in value.values for c in (v.x, v.y)]
    return _packed_reals(fmt.PACKED_VECTOR2_ARRAY, len(value.values), flat)


def _encode_vector3_array(value: gt.PackedVector3Array) -> bytes:
    flat = [c for v in value.values for c in (v.x, v.y, v.z)]
    return _packed_reals(fmt.PACKED_VECTOR3_ARRAY, len(value.values), flat)


def _encode_vector4_array(value: gt.PackedVector4Array) -> bytes:
    flat = [c for v in value.values for c in (v.x, v.y, v.z, v.w)]
    return _packed_reals(fmt.PACKED_VECTOR4_ARRAY, len(value.values), flat)


def _encode_color_array(value: gt.PackedColorArray) -> bytes:
    flat = [c for v in value.values for c in (v.r, v.g, v.b, v.a)]
    return _packed_reals(fmt.PACKED_COLOR_ARRAY, len(value.values), flat)


def _basis_rows(b: gt.Basis) -> tuple[float, ...]:
    # Godot sends a Basis row by row; the Python value holds it column by column.
    return (b.x.x, b.y.x, b.z.x, b.x.y, b.y.y, b.z.y, b.x.z, b.y.z, b.z.z)


# type(value) -> encoder, for every value that is not an Array or a Dictionary.
_ENCODERS: dict[type, Callable[[Any], bytes]] = {
    type(None): lambda v: _NIL_BYTES,
    bool: lambda v: _TRUE_BYTES if v else _FALSE_BYTES,
    int: _encode_int,
    float: _encode_float,
    str: _encode_str,
    bytes: _encode_bytes,
    bytearray: _encode_bytes,
    array.array: _encode_array,
    gt.Vector2: lambda v: _reals(fmt.VECTOR2, (v.x, v.y)),
    gt.Vector2i: lambda v: _INTS[2].pack(fmt.VECTOR2I, v.x, v.y),
    gt.Rect2: lambda v: _reals(fmt.RECT2, (v.position.x, v.position.y, v.size.x, v.size.y)),
    gt.Rect2i: lambda v: _INTS[4].pack(fmt.RECT2I, v.position.x, v.position.y, v.size.x, v.size.y),
    gt.Vector3: lambda v: _reals(fmt.VECTOR3, (v.x, v.y, v.z)),
    gt.Vector3i: lambda v: _INTS[3].pack(fmt.VECTOR3I, v.x, v.y, v.z),
    gt.Transform2D: lambda v: _reals(
        fmt.TRANSFORM2D, (v.x.x, v.x.y, v.y.x, v.y.y, v.origin.x, v.origin.y)
    ),
    gt.Vector4: lambda v: _reals(fmt.VECTOR4, (v.x, v.y, v.z, v.w)),
    gt.Vector4i: lambda v: _INTS[4].pack(fmt.VECTOR4I, v.x, v.y, v.z, v.w),
    gt.Plane: lambda v: _reals(fmt.PLANE, (v.normal.x, v.normal.y, v.normal.z, v.d)),
    gt.Quaternion: lambda v: _reals(fmt.QUATERNION, (v.x, v.y, v.z, v.w)),
    gt.AABB: lambda v: _reals(
        fmt.AABB, (v.position.x, v.position.y, v.position.z, v.size.x, v.size.y, v.size.z)
    ),
    gt.Basis: lambda v: _reals(fmt.BASIS, _basis_rows(v)),
    gt.Transform3D: lambda v: _reals(
        fmt.TRANSFORM3D, (*_basis_rows(v.basis), v.origin.x, v.origin.y, v.origin.z)
    ),
    gt.Projection: lambda v: _reals(
        fmt.PROJECTION,
        tuple(c for col in (v.x, v.y, v.z, v.w) for c in (col.x, col.y, col.z, col.w)),
    ),
    gt.Color: lambda v: _reals(fmt.COLOR, (v.r, v.g, v.b, v.a)),
    gt.StringName: _encode_string_name,
    gt.NodePath: _encode_node_path,
    gt.PackedStringArray: _encode_string_array,
    gt.PackedVector2Array: _encode_vector2_array,
    gt.PackedVector3Array: _encode_vector3_array,
    gt.PackedColorArray: _encode_color_array,
    gt.PackedVector4Array: _encode_vector4_array,
}


def _subclass_encoder(value: object) -> Callable[[Any], bytes]:
    """The encoder of the nearest base class with a Godot type (``IntEnum`` -> ``int``)."""
    for base in type(value).__mro__:
        encoder = _ENCODERS.get(base)
        if encoder is not None:
            return encoder
    raise TypeError(f"{type(value).__qualname__} has no Godot type")


def var_to_bytes(value: object, full_objects: bool = False) -> bytes:
    """Encode ``value`` as Godot's ``var_to_bytes`` does (no length prefix).

    Args:
        value: ``None``, ``bool``, ``int``, ``float``, ``str``, ``list``/``tuple``, ``dict``,
            ``bytes``/``bytearray``, ``array.array`` (type codes ``'i'``, ``'q'``, ``'f'``,
            ``'d'``) or a Godot value class, nested to any depth up to Godot's limit
            (1024).  Float vectors are sent in 32-bit floats, as a standard Godot build
            does.
        full_objects: Accepted for compatibility with Godot's signature; it changes
            nothing, as no Python value maps to a Godot ``Object``.

    Returns:
        The encoded variant, a multiple of 4 bytes long.

    Raises:
        TypeError: ``value`` (or something inside it) has no Godot type; the message
            names the Python type.
        ValueError: an ``int`` outside the signed 64-bit range, an invalid
            :class:`NodePath`, or nesting deeper than 1024 (which includes a container
            that contains itself).
    """
    del full_objects  # no Python value is an Object
    out: list[bytes] = []
    append = out.append
    encoders = _ENCODERS
    strings_get = _STRINGS.get
    stack: list[Iterator[object]] = [iter((value,))]
    while stack:
        for item in stack[-1]:
            kind = type(item)
            if kind is str:
                encoded = strings_get(item)  # type: ignore[call-overload]
                append(encoded if encoded is not None else _encode_plain_str(item))  # type: ignore[arg-type]
                continue
            encoder = encoders.get(kind)
            if encoder is not None:
                append(encoder(item))
            elif isinstance(item, (list, tuple)):
                append(_HEADER_U32.pack(fmt.ARRAY, len(item)))
                if item:
                    # The elements sit one level below the container: depth len(stack).
                    if len(stack) > fmt.MAX_DEPTH:
                        raise ValueError(f"nesting deeper than {fmt.MAX_DEPTH} levels")
                    stack.append(iter(item))
                    break
            elif isinstance(item, dict):
                append(_HEADER_U32.pack(fmt.DICTIONARY, len(item)))
                if item:
                    if len(stack) > fmt.MAX_DEPTH:
                        raise ValueError(f"nesting deeper than {fmt.MAX_DEPTH} levels")
                    stack.append(itertools.chain.from_iterable(item.items()))
                    break
            else:
                append(_subclass_encoder(item)(item))
        else:
            stack.pop()
    return b"".join(out)


def bytes_to_var(data: bytes | bytearray | memoryview, allow_objects: bool = False) -> object:
    """Decode one variant as Godot's ``bytes_to_var`` does; ``None`` for bad data.

    Godot ignores bytes after the first complete value, and so does this function.
    Everything Godot's decoder refuses gives ``None`` (as in Godot), and so does anything
    trionet refuses: Objects, RIDs, Callables, Signals and containers typed with a class or
    script.  Each refusal is logged (logger ``trionet.godot``, level WARNING) with the
    reason and the offset.

    The decoding loop runs in C when trionet's optional extension was built at install
    time (a C compiler was there), in Python otherwise; both give the same result for every
    input (see the codec's explanation page).

    Limits: nesting deeper than 1024 (Godot's limit); a count or length larger than the
    bytes left (checked before anything is allocated, so a Dictionary claiming a billion
    entries fails at once).  Memory used is at most about 16 times ``len(data)``
    (see :data:`MAX_VAR_SIZE`).

    Args:
        data: The encoded variant (without ``put_var``'s length prefix).
        allow_objects: Accepted for compatibility with Godot's signature; objects are
            refused whatever it says, as trionet never decodes objects from the network.

    Returns:
        The Python value (see the module's table), or ``None`` for a NIL variant and for
        data that is malformed, truncated, hostile or carries objects.

    Raises:
        TypeError: ``data`` is not bytes-like.
    """
    del allow_objects  # objects are always refused
    if isinstance(data, bytes):
        raw = data
    elif isinstance(data, (bytearray, memoryview)):
        raw = bytes(data)
    else:
        raise TypeError(f"data must be bytes-like, not {type(data).__qualname__}")
    try:
        value, _end = decode_variant(raw)
    except DecodeError as exc:
        logger.warning("bytes_to_var: refused %d bytes: %s", len(raw), exc)
        return None
    except Exception:  # a decoder bug must not break the "never raises" contract
        logger.error("bytes_to_var: internal error decoding %d bytes", len(raw), exc_info=True)
        return None
    return value
