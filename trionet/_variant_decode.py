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

import struct

from . import _variant_format as fmt
from ._variant_format import DecodeError
from ._variant_readers import READERS, need, read_string

__all__ = ["decode_variant"]

_unpack_u32 = fmt.U32.unpack_from
_unpack_i32 = fmt.I32.unpack_from
_I64 = struct.Struct("<q")
_F64 = struct.Struct("<d")
_F32 = fmt.F32


def _container_type(data: bytes, pos: int, end: int, kind: int) -> int:
    """Skip a typed container's element type (Godot 4.3+); refuse class and script types."""
    if kind == fmt.KIND_BUILTIN:
        need(end, pos, 4, "container element type")
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
    need(end, pos, 4, "element count")
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
    readers = READERS
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
                value, _ = read_string(data, pos - 4, end)  # it may stop at a NUL
            else:
                if "\0" in value or value[:1] == "\ufeff":
                    value, _ = read_string(data, pos - 4, end)
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
