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

Speed
-----
Everything in the format is aligned to 4 bytes, so the loop reads the input through
three views of its 32-bit words (unsigned, signed, float32: :func:`words_of`) and keeps
its position as a word index; indexing a view is about twice as fast as
``Struct.unpack_from``.  The common types (String, StringName, int, float, bool, nil,
Vector2/2i/3, Color, PackedVector2Array, Array, Dictionary) are decoded inline, and their
value objects are made with :func:`~trionet._variant_readers.maker` (no ``__init__``:
the decoded components already have the exact types the converters would give).  The
other types go through :data:`~trionet._variant_readers.READERS`.  A fixed-size read
past the end raises ``IndexError`` (or ``struct.error``), reported as truncation.
"""

from __future__ import annotations

import importlib
import os
import struct
from collections.abc import Callable

import attrs

from . import _godot_types as gt
from . import _variant_format as fmt
from ._variant_format import DecodeError
from ._variant_readers import READERS, maker, need, read_string, words_of

__all__ = ["decode_variant"]

_unpack_u32 = fmt.U32.unpack_from
_I64 = struct.Struct("<q")
_F64 = struct.Struct("<d")


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


def _typed_container(data: bytes, pos: int, end: int, header: int, is_dict: bool) -> int:
    """Skip the element types of a typed Array or Dictionary; the offset of its count."""
    if is_dict:
        if (key_kind := (header >> fmt.TYPED_KEY_SHIFT) & 3) != fmt.KIND_NONE:
            pos = _container_type(data, pos, end, key_kind)
        kind = (header >> fmt.TYPED_VALUE_SHIFT) & 3
    else:
        kind = (header >> fmt.TYPED_ARRAY_SHIFT) & 3
    if kind != fmt.KIND_NONE:
        pos = _container_type(data, pos, end, kind)
    return pos


# Why a cache: game-state messages repeat the same keys and names ("position",
# "health" ...) in every message and many times in one; a dict look-up of the raw bytes
# is about half the cost of decoding and checking them.  Only short strings are kept
# (at most _CACHED_STRINGS of at most _CACHED_LENGTH bytes, about 200 KiB even when a
# hostile peer fills it), and it is emptied when full.
#: Decoded strings by their raw bytes (the value depends on those bytes alone).
_STRINGS: dict[bytes, str] = {}
_CACHED_STRINGS = 1024
_CACHED_LENGTH = 48


def _string(data: bytes, raw: bytes, start: int, end: int) -> str:
    """Decode a String payload not in the cache; remember it when it is short."""
    try:
        text = raw.decode()
    except UnicodeDecodeError:
        text = read_string(data, start - 4, end)[0]  # it may stop at a NUL
    else:
        if "\0" in text or text[:1] == "\ufeff":  # Godot stops at a NUL, skips a BOM
            text = read_string(data, start - 4, end)[0]
    if len(raw) <= _CACHED_LENGTH:
        if len(_STRINGS) >= _CACHED_STRINGS:
            _STRINGS.clear()
        _STRINGS[raw] = text
    return text


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
    if pos & 3:  # the word views need the variant to start on a multiple of 4
        value, stop = decode_variant(data[pos:])
        return value, pos + stop
    try:
        return _DECODE(data, pos)
    except (IndexError, struct.error):  # a fixed-size read past the end
        raise DecodeError("truncated data") from None


_new = object.__new__
_make_vector3 = maker(gt.Vector3)
_make_vector2i = maker(gt.Vector2i)
_make_color = maker(gt.Color)
_set_vector2 = (gt.Vector2.__dict__["x"].__set__, gt.Vector2.__dict__["y"].__set__)
_set_string_name = gt.StringName.__dict__["value"].__set__
_set_packed = gt.PackedVector2Array.__dict__["values"].__set__


def _decode(data: bytes, pos: int) -> tuple[object, int]:
    # The hot path.  ``w`` is the word index of the next header (its byte offset is
    # ``w << 2``).  The innermost unfinished container is kept in locals (items,
    # append, remaining, is_dict); outer ones wait on ``stack``.
    end = len(data)
    words, ints, floats = words_of(data)
    readers = READERS
    vector2 = gt.Vector2
    new = _new
    set_x, set_y = _set_vector2
    make_vector3, make_vector2i, make_color = _make_vector3, _make_vector2i, _make_color
    string_name, set_string_name = gt.StringName, _set_string_name
    packed_vector2, set_packed = gt.PackedVector2Array, _set_packed
    max_depth = fmt.MAX_DEPTH
    strings_get = _STRINGS.get
    w = pos >> 2
    stack: list[tuple[list[object], int, bool]] = []
    # Its elements so far, how many are still to read (a Dictionary counts keys and
    # values) and its kind.  The top value goes into a one-element root list, so every
    # value has a container to go to.
    items: list[object] = []
    append = items.append
    remaining = 1
    is_dict = False
    value: object
    while True:
        header = words[w]
        type_number = header & 0xFF
        if type_number == 4:  # STRING
            start = (w + 2) << 2
            stop = start + words[w + 1]
            w = (stop + 3) >> 2
            if w << 2 > end:
                raise DecodeError(f"string at offset {start - 8} exceeds the data")
            raw = data[start:stop]
            value = strings_get(raw)
            if value is None:
                value = _string(data, raw, start, end)
        elif type_number == 2:  # INT
            if header & 0x10000:
                value = _I64.unpack_from(data, (w + 1) << 2)[0]
                w += 3
            else:
                value = ints[w + 1]
                w += 2
        elif type_number == 3:  # FLOAT
            if header & 0x10000:
                value = _F64.unpack_from(data, (w + 1) << 2)[0]
                w += 3
            else:
                value = floats[w + 1]
                w += 2
        elif type_number == 27 or type_number == 28:  # DICTIONARY, ARRAY
            dict_type = type_number == 27
            if header & 0xF0000:  # typed (Godot 4.3+)
                w = _typed_container(data, (w + 1) << 2, end, header, dict_type) >> 2
            else:
                w += 1
            count = words[w] & 0x7FFFFFFF
            w += 1
            if count:
                if dict_type:
                    count *= 2
                if count * 4 > end - (w << 2):  # every element takes at least 4 bytes
                    raise DecodeError(
                        f"container at offset {(w - 2) << 2} claims {count} elements; "
                        f"only {end - (w << 2)} bytes remain"
                    )
                # The new container sits at depth len(stack) (the root list is not a
                # level); its elements one below it.
                if len(stack) >= max_depth:
                    raise DecodeError(f"nesting deeper than {max_depth} levels")
                stack.append((items, remaining, is_dict))
                items, remaining, is_dict = [], count, dict_type
                append = items.append
                continue
            value = {} if dict_type else []
        elif type_number == 5 and not header & 0x10000:  # VECTOR2 (32-bit)
            value = new(vector2)
            set_x(value, floats[w + 1])
            set_y(value, floats[w + 2])
            w += 3
        elif type_number == 1:  # BOOL
            value = words[w + 1] != 0
            w += 2
        elif type_number == 0:  # NIL
            value = None
            w += 1
        elif type_number == 9 and not header & 0x10000:  # VECTOR3 (32-bit)
            value = make_vector3(floats, w + 1)
            w += 4
        elif type_number == 6:  # VECTOR2I
            value = make_vector2i(ints, w + 1)
            w += 3
        elif type_number == 20:  # COLOR (always 32-bit floats)
            value = make_color(floats, w + 1)
            w += 5
        elif type_number == 21:  # STRING_NAME: a String payload
            start = (w + 2) << 2
            stop = start + words[w + 1]
            w = (stop + 3) >> 2
            if w << 2 > end:
                raise DecodeError(f"string at offset {start - 8} exceeds the data")
            raw = data[start:stop]
            text = strings_get(raw)
            if text is None:
                text = _string(data, raw, start, end)
            value = new(string_name)
            set_string_name(value, text)
        elif type_number == 35 and not header & 0x10000:  # PACKED_VECTOR2_ARRAY
            count = words[w + 1]
            w += 2
            if count > 0x7FFFFFFF or count * 8 > end - (w << 2):
                raise DecodeError(
                    f"PackedVector2Array at offset {(w - 2) << 2} claims {count} items; "
                    f"only {end - (w << 2)} bytes remain"
                )
            vectors = []
            for i in range(w, w + 2 * count, 2):
                vector = new(vector2)
                set_x(vector, floats[i])
                set_y(vector, floats[i + 1])
                vectors.append(vector)
            w += 2 * count
            value = new(packed_vector2)
            set_packed(value, tuple(vectors))
        else:
            reader = readers[type_number]
            if reader is None:
                raise DecodeError(f"unknown type number {type_number} at offset {w << 2}")
            value, offset = reader(data, (w + 1) << 2, end, header)
            w = offset >> 2
        # Hand the value to the innermost container; finish the containers that fill up.
        append(value)
        remaining -= 1
        while not remaining:
            if not stack:  # the root list is full: it holds the result
                return items[0], w << 2
            if is_dict:
                pairs = iter(items)
                try:
                    # Later duplicates replace earlier ones, as Godot's ``d[key] = value``.
                    value = dict(zip(pairs, pairs, strict=True))
                except TypeError:
                    raise DecodeError(
                        "a Dictionary key is an Array or Dictionary (not hashable)"
                    ) from None
            else:
                value = items
            items, remaining, is_dict = stack.pop()
            append = items.append
            append(value)
            remaining -= 1


Decode = Callable[[bytes, int], tuple[object, int]]

# The value classes the compiled loop builds, in the order it expects them.
_COMPILED_CLASSES = (
    gt.Vector2,
    gt.Vector3,
    gt.Vector2i,
    gt.Color,
    gt.StringName,
    gt.PackedVector2Array,
)


def compiled_decoder() -> Decode | None:
    """The compiled twin of the decoding loop, configured; ``None`` when it is not built.

    ``trionet/_variant_speedups.c`` is built at install time when a C compiler is there
    (it is optional: see ``pyproject.toml``).  It reads the common types itself and calls
    this module's :data:`~trionet._variant_readers.READERS` for the others, so both
    loops give the same value or the same refusal for every input (the tests run every
    codec test through both, and compare them on random input).  Setting the environment
    variable ``TRIONET_NO_SPEEDUPS`` to a non-empty value keeps the Python loop.
    """
    if os.environ.get("TRIONET_NO_SPEEDUPS"):
        return None
    try:
        module = importlib.import_module("trionet._variant_speedups")
    except ImportError:
        return None
    classes = tuple(
        (cls, tuple(cls.__dict__[field.name] for field in attrs.fields(cls)))
        for cls in _COMPILED_CLASSES
    )
    module.configure(DecodeError, READERS, _typed_container, classes)
    decode: Decode = module.decode
    return decode


#: The decoding loop :func:`decode_variant` uses: the compiled one when it is built.
PYTHON_DECODE: Decode = _decode
COMPILED_DECODE = compiled_decoder()
_DECODE: Decode = COMPILED_DECODE or PYTHON_DECODE
