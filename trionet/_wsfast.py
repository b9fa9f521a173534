"""The frame layer's fast paths: client frames a server reads, without wsproto's parser.

wsproto parses every frame through a chain of generators, ``Frame`` objects and enum
conversions: for small messages that costs more than everything else a server does per
message.  The frames that make up nearly all traffic are simple, though: whole, unfragmented,
masked text or binary frames, and the client's close frame at the end.  This module reads
just those (sans-I/O: bytes in, bytes out) and says where it stopped; everything else —
control frames but the close, fragments, extensions, anything malformed — is left to wsproto,
whose verdict stands.  :class:`~trionet._wsproto.FrameLayer` decides when the fast path may
run (wsproto holds nothing of a frame, no message is half received) and the tests check
the results against wsproto's for any input.

Unmasking uses websockets' C routine when it is installed (its "speedups"); the C masker is
also installed into trionet's own wsproto decoders, for the frames wsproto still parses.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import cast

from wsproto.frame_protocol import (
    LOCAL_ONLY_CLOSE_REASONS,
    CloseReason,
    FrameDecoder,
    XorMaskerSimple,
)

__all__ = [
    "ACCELERATED",
    "BINARY",
    "LONGEST",
    "TEXT",
    "AcceleratedDecoder",
    "peer_close",
    "split_frames",
    "unmask",
]


def _find_accelerator() -> Callable[[bytes | bytearray, bytes], bytes] | None:
    """The C unmasking routine of websockets, if installed (the "speedups" extra)."""
    try:
        speedups = importlib.import_module("websockets.speedups")
    except ImportError:  # pragma: no cover - the fallback is tested with accelerate=False
        return None
    return cast("Callable[[bytes | bytearray, bytes], bytes]", speedups.apply_mask)


_apply_mask = _find_accelerator()

#: Whether the C unmasking routine is available in this process.
ACCELERATED = _apply_mask is not None

#: First byte of a whole text / binary frame: FIN, no RSV bits, the opcode.
TEXT = 0x81
BINARY = 0x82
_CLOSE = 0x88

#: The largest payload split_frames takes: a 16-bit length.  Longer frames (1 MiB
#: messages, say) arrive over many receives; wsproto streams those, and the C masker does
#: the per-byte work there.
LONGEST = 0xFFFF

# Close codes a peer may send (RFC 6455 7.4): the registered ones that are not reserved for
# local use, and 3000-4999 (libraries, frameworks, applications).
_PEER_CODES = frozenset(int(code) for code in CloseReason) - {
    int(code) for code in LOCAL_ONLY_CLOSE_REASONS
}
_NO_STATUS = int(CloseReason.NO_STATUS_RCVD)


def unmask(payload: bytes | bytearray, key: bytes | bytearray) -> bytes:
    """``payload`` XOR the repeated 4-byte ``key`` (RFC 6455 5.3)."""
    if _apply_mask is not None:
        return _apply_mask(payload, bytes(key))
    size = len(payload)
    if not size:
        return b""
    stream = (bytes(key) * (size // 4 + 1))[:size]
    value = int.from_bytes(payload, "little") ^ int.from_bytes(stream, "little")
    return value.to_bytes(size, "little")


def split_frames(
    data: bytes, longest: int = LONGEST
) -> tuple[list[tuple[int, int, bytes]], int, bool]:
    """The whole plain data frames at the start of ``data``: ``(frames, used, partial)``.

    Frames with more than ``longest`` payload bytes (at most :data:`LONGEST`) are not
    taken: a connection passes its message size limit, so that a frame over it fails
    while it arrives (in wsproto's hands) instead of being collected first.

    ``frames`` holds ``(first_byte, start, payload)`` per frame (``TEXT`` or ``BINARY``,
    where the frame starts in ``data``, the unmasked payload).  Reading stops at ``used``:
    the end of ``data``; or the start of a frame this function does not take (wsproto's
    to parse, ``partial`` false); or the start of a plain data frame that is not complete
    yet (``partial`` true: keep it and read again once more bytes came).
    """
    frames: list[tuple[int, int, bytes]] = []
    end = len(data)
    pos = 0
    while pos < end:
        first = data[pos]
        if first != TEXT and first != BINARY:
            return frames, pos, False
        if pos + 2 > end:
            return frames, pos, True
        second = data[pos + 1]
        if second < 0x80:  # not masked: wsproto's error to report
            return frames, pos, False
        size = second & 0x7F
        head = pos + 6
        if size == 126:
            if pos + 4 > end:
                return frames, pos, True
            size = (data[pos + 2] << 8) | data[pos + 3]
            if size < 126:  # a longer length than needed: wsproto's error
                return frames, pos, False
            head = pos + 8
        elif size == 127:
            return frames, pos, False
        if size > longest:
            return frames, pos, False
        stop = head + size
        if stop > end:
            return frames, pos, True
        frames.append((first, pos, unmask(data[head:stop], data[head - 4 : head])))
        pos = stop
    return frames, pos, False


def peer_close(data: bytes) -> tuple[int, str, bytes] | None:
    """``data`` as exactly one valid masked close frame: ``(code, reason, payload)``.

    ``payload`` is the unmasked payload, which is also the payload of the answer (the same
    code and reason, as wsproto answers).  ``None`` for anything else: several frames, an
    invalid code or reason, RSV bits, no mask (wsproto's to judge).
    """
    size = len(data) - 6
    if size < 0 or size > 125 or data[0] != _CLOSE or data[1] != 0x80 | size:
        return None
    payload = unmask(data[6:], data[2:6])
    if not size:
        return _NO_STATUS, "", payload
    code = int.from_bytes(payload[:2], "big")
    if code not in _PEER_CODES and not 3000 <= code <= 4999:
        return None
    try:
        reason = payload[2:].decode()
    except UnicodeDecodeError:
        return None
    return code, reason, payload


class _CMasker:
    """Unmasks with the C routine; same contract as wsproto's ``XorMaskerSimple``."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes | bytearray) -> None:
        self._key = bytes(key)  # the masking key, rotated as payload pieces go by

    def process(self, data: bytes | bytearray) -> bytes:
        key = self._key
        assert _apply_mask is not None
        out: bytes = _apply_mask(data, key)
        shift = len(data) % 4
        if shift:
            self._key = key[shift:] + key[:shift]
        return out


class AcceleratedDecoder(FrameDecoder):
    """wsproto's frame decoder with the C masker: installed on trionet's decoders only."""

    def parse_header(self) -> bool:
        """Parse the header as wsproto does, then put the C masker in place of its own."""
        if not super().parse_header():
            return False
        masker = self.masker
        if type(masker) is XorMaskerSimple:
            self.masker = _CMasker(masker._masking_key)  # type: ignore[assignment]
        return True
