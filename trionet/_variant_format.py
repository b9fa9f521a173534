"""Godot 4's binary serialization format: type numbers, header fields and limits.

Facts shared by the encoder (:mod:`trionet._variant`) and the decoder
(:mod:`trionet._variant_decode`); no I/O, no trio.

Theory of the format
--------------------
Every value starts with a 4-byte little-endian header.  Its low byte is the type number
(Godot 4's ``Variant::Type``: the numbers below, which differ from Godot 3's after
``STRING``); byte 1 is unused; the upper 16 bits carry flags:

* bit 16, ``FLAG_64``: for ``INT`` and ``FLOAT``, the payload is 64 bits instead of 32;
  for the float math types (vectors, rects, transforms ...), the components are doubles
  (what a double-precision Godot build sends; a standard build sends 32-bit floats).
* bits 16-17 (``ARRAY``) and 16-17 / 18-19 (``DICTIONARY`` keys / values): the kind of
  element type of a typed container (Godot 4.3+): none, a built-in type (a u32 type
  number follows the header), a class name or a script path (a string follows).

The payload follows, padded with zero bytes to a multiple of 4.  Strings are a u32 byte
length, the UTF-8 bytes and the padding; Arrays and Dictionaries are a u32 count (its top
bit is an old "shared" flag, ignored) followed by the elements (key, value, key, value
... for a Dictionary).
"""

from __future__ import annotations

import logging
import struct

logger = logging.getLogger("trionet.godot")

# Godot 4 type numbers (core/variant/variant.h, ``Variant::Type``).
NIL = 0
BOOL = 1
INT = 2
FLOAT = 3
STRING = 4
VECTOR2 = 5
VECTOR2I = 6
RECT2 = 7
RECT2I = 8
VECTOR3 = 9
VECTOR3I = 10
TRANSFORM2D = 11
VECTOR4 = 12
VECTOR4I = 13
PLANE = 14
QUATERNION = 15
AABB = 16
BASIS = 17
TRANSFORM3D = 18
PROJECTION = 19
COLOR = 20
STRING_NAME = 21
NODE_PATH = 22
RID = 23
OBJECT = 24
CALLABLE = 25
SIGNAL = 26
DICTIONARY = 27
ARRAY = 28
PACKED_BYTE_ARRAY = 29
PACKED_INT32_ARRAY = 30
PACKED_INT64_ARRAY = 31
PACKED_FLOAT32_ARRAY = 32
PACKED_FLOAT64_ARRAY = 33
PACKED_STRING_ARRAY = 34
PACKED_VECTOR2_ARRAY = 35
PACKED_VECTOR3_ARRAY = 36
PACKED_COLOR_ARRAY = 37
PACKED_VECTOR4_ARRAY = 38
VARIANT_MAX = 39

#: The header's type field.  Godot reads only the low byte (byte 1 is unused).
TYPE_MASK = 0xFF
#: 64-bit payload (INT, FLOAT) or double components (float math types).
FLAG_64 = 1 << 16
#: Shifts of the 2-bit typed-container kinds in the header.
TYPED_ARRAY_SHIFT = 16
TYPED_KEY_SHIFT = 16
TYPED_VALUE_SHIFT = 18
KIND_NONE = 0
KIND_BUILTIN = 1
KIND_CLASS_NAME = 2
KIND_SCRIPT = 3
#: Array and Dictionary counts: the top bit is Godot's old "shared" flag, not part of it.
COUNT_MASK = 0x7FFFFFFF
#: The largest count or length Godot accepts (its counts are signed 32-bit).
INT32_MAX = 0x7FFFFFFF

# Why 1024: it is Godot's own limit (``Variant::MAX_RECURSION_DEPTH``), applied on both
# encode and decode, so trionet accepts exactly the nesting Godot produces and refuses what
# Godot would refuse.  trionet's encoder and decoder keep their own stack (they do not
# recurse in Python), so the limit does not depend on Python's recursion limit.
#: The deepest nesting accepted: the top value is at depth 0, its elements at depth 1 ...
MAX_DEPTH = 1024

# Why 16 MiB: the length prefix of ``StreamPeer.put_var`` is a u32, so without a limit a
# peer could make a reader allocate up to 4 GiB by sending four bytes.  Game-state
# messages are kilobytes, and 16 MiB still carries a large PackedByteArray (a map, a save
# file) in one message.  Decoding allocates at most about 16 times the encoded size: the
# worst cases are packed vector arrays and many tiny containers, where every 8 bytes
# become a Python object of 60 to 130 bytes (a PackedByteArray costs 1 time its size).  So
# one refused-above-16-MiB message can cost at most about 256 MiB while it is decoded.
#: The largest encoded variant that ``get_var`` accepts (bytes, after the length prefix).
MAX_VAR_SIZE = 16 * 1024 * 1024

U32 = struct.Struct("<I")
I32 = struct.Struct("<i")
F32 = struct.Struct("<f")
#: Header and one u32: strings, counts, bools, packed arrays.
HEADER_U32 = struct.Struct("<II")

#: Zero bytes that pad a payload of length ``n`` to 4: ``PADDING[-n & 3]``.
PADDING = (b"", b"\0", b"\0\0", b"\0\0\0")


class DecodeError(ValueError):
    """Bytes that are not one acceptable Godot variant; the message says why.

    Raised by :func:`trionet._variant_decode.decode_variant`;
    :func:`trionet._variant.bytes_to_var` turns it into ``None`` and a log record.
    """
