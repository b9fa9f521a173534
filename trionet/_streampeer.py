"""Godot's ``StreamPeer`` base: typed values, strings and Variants over any byte stream.

A subclass supplies the five byte primitives (:meth:`StreamPeer.put_data`,
:meth:`~StreamPeer.put_partial_data`, :meth:`~StreamPeer.get_data`,
:meth:`~StreamPeer.get_partial_data`, :meth:`~StreamPeer.get_available_bytes`) and what
happens when the stream can no longer be trusted (:meth:`StreamPeer._desync`); this class
adds everything Godot builds on them, with Godot's byte layouts, its truncation of
out-of-range values and its ``big_endian`` switch.

Godot's conventions, kept here: the typed ``put_*`` write the low bits of the value
(``put_u8(300)`` writes ``0x2c``, ``put_8(-1)`` writes ``0xff``); a typed ``get_*`` whose
read fails returns ``0`` (or ``0.0``, ``""``, ``None``); values are little-endian unless
``big_endian`` is set, which also applies to the length prefixes of strings and Variants
(the Variant payload itself is always little-endian, as in Godot).
"""

from __future__ import annotations

import array
import logging
import math
import struct

from ._godot_errors import Error
from ._variant import MAX_VAR_SIZE, bytes_to_var, var_to_bytes

__all__ = ["MAX_STRING_SIZE", "StreamPeer", "godot_typed"]

log = logging.getLogger("trionet.godot")

# The largest length prefix get_string()/get_utf8_string() accept, in bytes.
#
# Godot allocates whatever a length prefix claims; a hostile peer could then make a
# server hold gigabytes waiting for a string that never comes.  16 MiB is far above any
# text a game exchanges in one value and small enough that a few bad peers cannot exhaust
# memory.  Past it the stream is out of step (the payload still follows), so the peer is
# failed rather than guessed at.
MAX_STRING_SIZE = 16 * 1024 * 1024

_INT64_MIN = -(2**63)
_MASKS = {1: 0xFF, 2: 0xFFFF, 4: 0xFFFF_FFFF, 8: 0xFFFF_FFFF_FFFF_FFFF}
_UNSIGNED = {1: "B", 2: "H", 4: "I", 8: "Q"}
_SIGNED = {1: "b", 2: "h", 4: "i", 8: "q"}
_FLOAT32_MAX = 3.4028234663852886e38


def godot_typed(value: object) -> bool:
    """Whether ``value`` is of a Python type that stands for a Godot type.

    Such a value given where Godot expects another type is Godot's
    ``ERR_INVALID_PARAMETER``; a value with no Godot type at all is a ``TypeError``.
    """
    if value is None or isinstance(
        value, (bool, int, float, str, bytes, bytearray, list, tuple, dict, array.array)
    ):
        return True
    return type(value).__module__ == "trionet._godot_types"


def _refuse(value: object, argument: str, expected: str) -> Error:
    """``ERR_INVALID_PARAMETER`` for a Godot-typed value, ``TypeError`` for anything else."""
    if not godot_typed(value):
        raise TypeError(f"{argument} must be {expected}, not {type(value).__name__}")
    log.warning("%s must be %s, not %s", argument, expected, type(value).__name__)
    return Error.ERR_INVALID_PARAMETER


def _as_int(value: float) -> int:
    """Godot's float-to-int conversion: toward zero; NaN and infinities as x86 gives them."""
    if isinstance(value, float):
        if not math.isfinite(value):
            return _INT64_MIN
        return int(value)
    return int(value)


def _float32_bits(value: float) -> int:
    """The IEEE single bits of ``value`` as a C ``(float)`` cast gives them (overflow: inf)."""
    try:
        packed = struct.pack("<f", value)
    except OverflowError:
        packed = struct.pack("<f", math.copysign(math.inf, value))
    return int.from_bytes(packed, "little")


def _half_bits(value: float) -> int:
    """Godot's ``Math::make_half_float``: truncates the mantissa, flushes small values to 0."""
    bits = _float32_bits(value)
    sign = bits >> 31
    mantissa = bits & 0x7F_FFFF
    exponent = bits & 0x7F80_0000
    if exponent >= 0x4780_0000:
        # NaN stays NaN; anything else too large for a half becomes infinity.
        mantissa = 0x7F_FFFF if mantissa and exponent == 0x7F80_0000 else 0
        return (sign << 15) | 0x7C00 | (mantissa >> 13)
    if exponent <= 0x3800_0000:
        return 0  # Godot writes every half denormal (and its sign) as +0
    return (sign << 15) | ((exponent - 0x3800_0000) >> 13) | (mantissa >> 13)


class StreamPeer:
    """Godot's ``StreamPeer``: the typed layer shared by every stream peer.

    What blocks in Godot is awaited here (``await peer.put_u32(7)``,
    ``await peer.get_var()``); what does not block is a plain call
    (:meth:`get_partial_data`, :meth:`put_partial_data`, :meth:`get_available_bytes`).

    Error handling:
        Network conditions and bad arguments come back as :class:`~trionet.Error` values,
        as in Godot; nothing here raises for them.  A value with no Godot type at all
        (an ``object()``, a ``set``) raises ``TypeError``.
    """

    def __init__(self) -> None:
        self._big_endian = False  # byte order of typed values and length prefixes

    # -- byte order ---------------------------------------------------------------------

    @property
    def big_endian(self) -> bool:
        """Byte order of the typed values and length prefixes (default little-endian)."""
        return self._big_endian

    @big_endian.setter
    def big_endian(self, enabled: bool) -> None:
        self._big_endian = bool(enabled)

    def set_big_endian(self, enabled: bool) -> None:
        """Godot's setter for :attr:`big_endian`."""
        self.big_endian = enabled

    def is_big_endian_enabled(self) -> bool:
        """Godot's getter for :attr:`big_endian`."""
        return self._big_endian

    # -- primitives (subclasses) --------------------------------------------------------

    async def put_data(self, data: bytes | bytearray | memoryview) -> Error:
        """Send all of ``data``, waiting while the peer does not read.

        Returns:
            ``Error.OK``, or the error that stopped it.
        """
        raise NotImplementedError

    def put_partial_data(self, data: bytes | bytearray | memoryview) -> tuple[Error, int]:
        """Send what can be sent now without waiting.

        Returns:
            ``(error, sent)``: ``sent`` bytes of ``data`` were taken (0 on error).
        """
        raise NotImplementedError

    async def get_data(self, n_bytes: int) -> tuple[Error, bytes]:
        """Wait for exactly ``n_bytes`` bytes.

        Returns:
            ``(error, data)``: ``data`` holds ``n_bytes`` bytes when ``error`` is OK, else
            the bytes read before the failure.
        """
        raise NotImplementedError

    def get_partial_data(self, n_bytes: int) -> tuple[Error, bytes]:
        """Return the bytes there now, at most ``n_bytes``, without waiting.

        Returns:
            ``(error, data)``; ``data`` is empty when ``error`` is not OK.
        """
        raise NotImplementedError

    def get_available_bytes(self) -> int:
        """How many received bytes wait to be read."""
        raise NotImplementedError

    def _desync(self, reason: str) -> None:
        """The stream is out of step (a refused length prefix): fail the peer."""
        raise NotImplementedError

    # -- typed values -------------------------------------------------------------------

    async def _put_int(self, value: object, size: int, argument: str) -> Error:
        if not isinstance(value, (int, float)):
            return _refuse(value, argument, "an int")
        bits = _as_int(value) & _MASKS[size]
        order = ">" if self._big_endian else "<"
        return await self.put_data(struct.pack(order + _UNSIGNED[size], bits))

    async def put_u8(self, value: int) -> Error:
        """Write the low 8 bits of ``value`` (``put_u8(300)`` writes 44).

        Returns:
            ``Error.OK`` or the write's error; ``ERR_INVALID_PARAMETER`` for a non-number.
        """
        return await self._put_int(value, 1, "value")

    async def put_8(self, value: int) -> Error:
        """Write ``value`` as a signed byte (truncated: ``put_8(-1)`` writes 0xff)."""
        return await self._put_int(value, 1, "value")

    async def put_u16(self, value: int) -> Error:
        """Write the low 16 bits of ``value``."""
        return await self._put_int(value, 2, "value")

    async def put_16(self, value: int) -> Error:
        """Write ``value`` as a signed 16-bit integer (truncated to 16 bits)."""
        return await self._put_int(value, 2, "value")

    async def put_u32(self, value: int) -> Error:
        """Write the low 32 bits of ``value``."""
        return await self._put_int(value, 4, "value")

    async def put_32(self, value: int) -> Error:
        """Write ``value`` as a signed 32-bit integer (truncated to 32 bits)."""
        return await self._put_int(value, 4, "value")

    async def put_u64(self, value: int) -> Error:
        """Write the low 64 bits of ``value``."""
        return await self._put_int(value, 8, "value")

    async def put_64(self, value: int) -> Error:
        """Write ``value`` as a signed 64-bit integer (truncated to 64 bits)."""
        return await self._put_int(value, 8, "value")

    async def _put_bits(self, value: object, size: int) -> Error:
        if not isinstance(value, (int, float)):
            return _refuse(value, "value", "a float")
        number = _as_float(value)
        if size == 2:
            bits = _half_bits(number)
        elif size == 4:
            bits = _float32_bits(number)
        else:
            bits = int.from_bytes(struct.pack("<d", number), "little")
        order = ">" if self._big_endian else "<"
        return await self.put_data(struct.pack(order + _UNSIGNED[size], bits))

    async def put_half(self, value: float) -> Error:
        """Write ``value`` as a half float, converted as Godot 4 does (truncating)."""
        return await self._put_bits(value, 2)

    async def put_float(self, value: float) -> Error:
        """Write ``value`` as a 32-bit float (too large: infinity, as a C cast)."""
        return await self._put_bits(value, 4)

    async def put_double(self, value: float) -> Error:
        """Write ``value`` as a 64-bit float."""
        return await self._put_bits(value, 8)

    async def _get_raw(self, size: int) -> int | None:
        error, data = await self.get_data(size)
        if error or len(data) != size:
            return None
        return int.from_bytes(data, "big" if self._big_endian else "little")

    async def _get_int(self, size: int, signed: bool) -> int:
        bits = await self._get_raw(size)
        if bits is None:
            return 0
        if signed and bits >> (size * 8 - 1):
            bits -= 1 << (size * 8)
        return bits

    async def get_u8(self) -> int:
        """Read an unsigned byte (0 if the read fails, as in Godot)."""
        return await self._get_int(1, False)

    async def get_8(self) -> int:
        """Read a signed byte."""
        return await self._get_int(1, True)

    async def get_u16(self) -> int:
        """Read an unsigned 16-bit integer."""
        return await self._get_int(2, False)

    async def get_16(self) -> int:
        """Read a signed 16-bit integer."""
        return await self._get_int(2, True)

    async def get_u32(self) -> int:
        """Read an unsigned 32-bit integer."""
        return await self._get_int(4, False)

    async def get_32(self) -> int:
        """Read a signed 32-bit integer."""
        return await self._get_int(4, True)

    async def get_u64(self) -> int:
        """Read an unsigned 64-bit integer.

        Godot's ``int`` is signed, so there a value above 2**63 shows as negative; here it
        stays unsigned.
        """
        return await self._get_int(8, False)

    async def get_64(self) -> int:
        """Read a signed 64-bit integer."""
        return await self._get_int(8, True)

    async def _get_float(self, size: int) -> float:
        bits = await self._get_raw(size)
        if bits is None:
            return 0.0
        code = {2: "<e", 4: "<f", 8: "<d"}[size]
        return float(struct.unpack(code, bits.to_bytes(size, "little"))[0])

    async def get_half(self) -> float:
        """Read a half float (Godot 4)."""
        return await self._get_float(2)

    async def get_float(self) -> float:
        """Read a 32-bit float."""
        return await self._get_float(4)

    async def get_double(self) -> float:
        """Read a 64-bit float."""
        return await self._get_float(8)

    # -- strings ------------------------------------------------------------------------

    async def _put_prefixed(self, payload: bytes) -> Error:
        order = ">" if self._big_endian else "<"
        return await self.put_data(struct.pack(order + "I", len(payload)) + payload)

    async def put_string(self, value: str) -> Error:
        """Write a u32 byte length then ``value`` as ASCII.

        As in Godot 4, a character outside ASCII is written as a space (and logged); use
        :meth:`put_utf8_string` for text.
        """
        if not isinstance(value, str):
            return _refuse(value, "value", "a str")
        try:
            payload = value.encode("ascii")
        except UnicodeEncodeError:
            log.warning("put_string: characters outside ASCII are written as spaces")
            payload = bytes(c if c < 0x80 else 0x20 for c in map(ord, value))
        return await self._put_prefixed(payload)

    async def put_utf8_string(self, value: str) -> Error:
        """Write a u32 byte length then ``value`` encoded as UTF-8."""
        if not isinstance(value, str):
            return _refuse(value, "value", "a str")
        return await self._put_prefixed(value.encode("utf-8", errors="replace"))

    async def _get_sized(self, n_bytes: int, what: str) -> bytes | None:
        if isinstance(n_bytes, bool) or not isinstance(n_bytes, int):
            _refuse(n_bytes, "n_bytes", "an int")
            return None
        if n_bytes < 0:
            n_bytes = await self.get_32()
            if n_bytes < 0 or n_bytes > MAX_STRING_SIZE:
                self._desync(f"{what}: refused a length prefix of {n_bytes} bytes")
                return None
        error, data = await self.get_data(n_bytes)
        return None if error else data

    async def get_string(self, n_bytes: int = -1) -> str:
        """Read ``n_bytes`` bytes (by default: a u32 length, then that many) as a string.

        Godot reads the bytes as Latin-1 and stops at the first NUL; so does this.

        Returns:
            The string, or ``""`` when the read fails.  A length prefix above
            :data:`MAX_STRING_SIZE` (or negative) leaves the stream out of step, so the peer
            is failed (``STATUS_ERROR``) and ``""`` is returned.
        """
        data = await self._get_sized(n_bytes, "get_string")
        if data is None:
            return ""
        return data.split(b"\0", 1)[0].decode("latin-1")

    async def get_utf8_string(self, n_bytes: int = -1) -> str:
        """Read ``n_bytes`` bytes (by default: a u32 length, then that many) as UTF-8.

        Decoding stops at the first NUL; invalid UTF-8 is replaced by U+FFFD, as Godot 4
        does.  Failures as for :meth:`get_string`.
        """
        data = await self._get_sized(n_bytes, "get_utf8_string")
        if data is None:
            return ""
        return data.split(b"\0", 1)[0].decode("utf-8", errors="replace")

    # -- Variants -----------------------------------------------------------------------

    async def put_var(self, value: object, full_objects: bool = False) -> Error:
        """Write ``value`` as a u32 length then Godot 4's binary serialization of it.

        Args:
            value: ``None``, ``bool``, ``int``, ``float``, ``str``, ``list``, ``dict``,
                ``bytes``, ``array.array`` or a :mod:`trionet` Godot value class.
            full_objects: Godot's argument; trionet has no objects to send, so it changes
                nothing.

        Returns:
            ``Error.OK`` or the write's error.

        Raises:
            TypeError: ``value`` (or something inside it) has no Godot type.
        """
        payload = var_to_bytes(value, full_objects)
        order = ">" if self._big_endian else "<"
        return await self.put_data(struct.pack(order + "i", len(payload)) + payload)

    async def get_var(self, allow_objects: bool = False) -> object:
        """Read a u32 length then a Variant, as Godot's ``put_var`` writes them.

        Args:
            allow_objects: Godot's argument.  Objects are never decoded from the network:
                ``True`` is logged and ignored.

        Returns:
            The value, or ``None`` when the read fails or the bytes are not a valid Variant
            (the stream stays in step: the declared bytes were consumed).  A length prefix
            above ``MAX_VAR_SIZE`` (16 MiB), or negative, is refused before anything is
            allocated; the payload that follows would leave the stream out of step, so the
            peer is failed (``STATUS_ERROR``) and ``None`` is returned.
        """
        if allow_objects:
            log.warning("get_var: allow_objects=True ignored: objects are never decoded")
        length = await self._get_raw(4)
        if length is None:
            return None
        if length >= 1 << 31:
            length -= 1 << 32
        if length < 0 or length > MAX_VAR_SIZE:
            self._desync(f"get_var: refused a length prefix of {length} bytes")
            return None
        error, data = await self.get_data(length)
        if error:
            return None
        return bytes_to_var(data, allow_objects=False)


def _as_float(value: float) -> float:
    try:
        return float(value)
    except OverflowError:  # an int beyond the double range
        return math.copysign(math.inf, value)
