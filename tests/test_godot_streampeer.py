"""StreamPeer's typed layer: exact bytes, Godot's truncation, byte order, strings, Variants.

A tiny in-memory StreamPeer (bytes written go to ``sent``, reads come from ``incoming``)
keeps these tests free of I/O; the TCP peer inherits exactly this code.
"""

from __future__ import annotations

import math
import struct

import pytest
import trio

import trionet
from trionet import Error


class BufferPeer(trionet.StreamPeer):
    """Writes go to ``sent``; reads take from ``incoming`` (EOF when it runs out)."""

    def __init__(self, incoming: bytes = b"") -> None:
        super().__init__()
        self.sent = bytearray()
        self.incoming = bytearray(incoming)
        self.desynced: list[str] = []

    async def put_data(self, data: bytes | bytearray | memoryview) -> Error:
        await trio.lowlevel.checkpoint()
        self.sent += data
        return Error.OK

    def put_partial_data(self, data: bytes | bytearray | memoryview) -> tuple[Error, int]:
        self.sent += data
        return Error.OK, len(data)

    async def get_data(self, n_bytes: int) -> tuple[Error, bytes]:
        await trio.lowlevel.checkpoint()
        data = bytes(self.incoming[:n_bytes])
        del self.incoming[:n_bytes]
        return (Error.OK if len(data) == n_bytes else Error.ERR_FILE_EOF), data

    def get_partial_data(self, n_bytes: int) -> tuple[Error, bytes]:
        data = bytes(self.incoming[:n_bytes])
        del self.incoming[:n_bytes]
        return Error.OK, data

    def get_available_bytes(self) -> int:
        return len(self.incoming)

    def _desync(self, reason: str) -> None:
        self.desynced.append(reason)


PUTS = [
    ("put_u8", 300, b"\x2c"),
    ("put_u8", -1, b"\xff"),
    ("put_8", -1, b"\xff"),
    ("put_8", 200, b"\xc8"),
    ("put_u16", 70000, b"\x70\x11"),
    ("put_16", -2, b"\xfe\xff"),
    ("put_u32", 2**32 + 5, b"\x05\x00\x00\x00"),
    ("put_32", -1, b"\xff\xff\xff\xff"),
    ("put_u64", 2**64 + 1, b"\x01" + b"\x00" * 7),
    ("put_64", -(2**63), b"\x00" * 7 + b"\x80"),
    ("put_u8", 3.9, b"\x03"),  # a float converts toward zero, as GDScript does
    ("put_8", -3.9, b"\xfd"),
    ("put_u8", True, b"\x01"),
    ("put_float", 1.5, b"\x00\x00\xc0\x3f"),
    ("put_float", 1e300, b"\x00\x00\x80\x7f"),  # beyond float32: +inf, as a C cast
    ("put_float", -1e300, b"\x00\x00\x80\xff"),
    ("put_double", -2.0, b"\x00" * 7 + b"\xc0"),
    ("put_half", 1.5, b"\x00\x3e"),
    ("put_half", 65504.0, b"\xff\x7b"),
    ("put_half", 1e6, b"\x00\x7c"),  # too large: +inf
    ("put_half", 1e-6, b"\x00\x00"),  # Godot flushes half denormals to zero
    ("put_half", -1e-6, b"\x00\x00"),  # ... including the sign
    ("put_half", 1.0009765625 + 2**-12, b"\x01\x3c"),  # the mantissa is truncated
]


@pytest.mark.parametrize(("method", "value", "expected"), PUTS)
async def test_put_writes_godots_bytes(method: str, value: float, expected: bytes) -> None:
    with trio.fail_after(5):
        peer = BufferPeer()
        assert await getattr(peer, method)(value) == Error.OK
        assert bytes(peer.sent) == expected


async def test_put_half_keeps_nan() -> None:
    with trio.fail_after(5):
        peer = BufferPeer()
        await peer.put_half(math.nan)
        (bits,) = struct.unpack("<H", peer.sent)
        assert bits & 0x7C00 == 0x7C00
        assert bits & 0x03FF


async def test_big_endian_applies_to_typed_values_and_prefixes() -> None:
    with trio.fail_after(5):
        peer = BufferPeer()
        peer.big_endian = True
        assert peer.is_big_endian_enabled()
        await peer.put_u16(0x0102)
        await peer.put_32(-2)
        await peer.put_double(1.0)
        await peer.put_half(1.0)
        await peer.put_string("ab")
        await peer.put_var(7)
        assert bytes(peer.sent) == (
            b"\x01\x02"
            + b"\xff\xff\xff\xfe"
            + b"\x3f\xf0"
            + b"\x00" * 6
            + b"\x3c\x00"
            + b"\x00\x00\x00\x02ab"
            # the Variant's length prefix follows big_endian; its payload never does
            + b"\x00\x00\x00\x08"
            + b"\x02\x00\x00\x00\x07\x00\x00\x00"
        )
        peer.set_big_endian(False)
        assert not peer.big_endian


GETS = [
    ("get_u8", b"\xff", 255),
    ("get_8", b"\xff", -1),
    ("get_u16", b"\xfe\xff", 0xFFFE),
    ("get_16", b"\xfe\xff", -2),
    ("get_u32", b"\xff\xff\xff\xff", 2**32 - 1),
    ("get_32", b"\x00\x00\x00\x80", -(2**31)),
    ("get_u64", b"\xff" * 8, 2**64 - 1),
    ("get_64", b"\xff" * 8, -1),
    ("get_float", b"\x00\x00\xc0\x3f", 1.5),
    ("get_double", b"\x00" * 7 + b"\xc0", -2.0),
    ("get_half", b"\x00\x3e", 1.5),
]


@pytest.mark.parametrize(("method", "data", "expected"), GETS)
async def test_get_reads_godots_bytes(method: str, data: bytes, expected: float) -> None:
    with trio.fail_after(5):
        peer = BufferPeer(data)
        assert await getattr(peer, method)() == expected
        assert peer.get_available_bytes() == 0


@pytest.mark.parametrize("method", [name for name, _, _ in GETS])
async def test_failed_get_returns_zero(method: str) -> None:
    with trio.fail_after(5):
        peer = BufferPeer(b"\x01")  # too short for all but the 8-bit ones, which get EOF next
        if method in ("get_u8", "get_8"):
            await getattr(peer, method)()
        result = await getattr(peer, method)()
        expected_type = float if method in ("get_half", "get_float", "get_double") else int
        assert result == 0
        assert type(result) is expected_type


async def test_strings() -> None:
    with trio.fail_after(5):
        peer = BufferPeer()
        await peer.put_string("hé!")  # Godot 4 writes a non-ASCII character as a space
        await peer.put_utf8_string("hé!")
        assert bytes(peer.sent) == b"\x03\x00\x00\x00h !" + b"\x04\x00\x00\x00h\xc3\xa9!"
        reader = BufferPeer(bytes(peer.sent) + b"ab\x00cd" + b"\xff\xfe")
        assert await reader.get_string() == "h !"
        assert await reader.get_utf8_string() == "hé!"
        assert await reader.get_string(5) == "ab"  # stops at the NUL, as Godot's char* does
        assert await reader.get_utf8_string(2) == "\ufffd\ufffd"
        assert await reader.get_string() == ""  # EOF


async def test_hostile_string_length_fails_the_peer_without_reading() -> None:
    with trio.fail_after(5):
        peer = BufferPeer(b"\xff\xff\xff\x7f" + b"x" * 10)
        assert await peer.get_string() == ""
        assert peer.desynced
        assert "length prefix" in peer.desynced[0]
        assert peer.get_available_bytes() == 10  # nothing was read for the huge string


async def test_put_var_writes_length_and_godot4_bytes() -> None:
    with trio.fail_after(5):
        peer = BufferPeer()
        await peer.put_var(None)
        await peer.put_var(True)
        await peer.put_var(2**40)
        await peer.put_var(0.5)
        await peer.put_var("hi")
        assert bytes(peer.sent) == (
            b"\x04\x00\x00\x00"
            + b"\x00\x00\x00\x00"
            + b"\x08\x00\x00\x00"
            + b"\x01\x00\x00\x00\x01\x00\x00\x00"
            + b"\x0c\x00\x00\x00"
            + b"\x02\x00\x01\x00"
            + (2**40).to_bytes(8, "little")
            + b"\x08\x00\x00\x00"
            + b"\x03\x00\x00\x00"
            + b"\x00\x00\x00\x3f"
            + b"\x0c\x00\x00\x00"
            + b"\x04\x00\x00\x00\x02\x00\x00\x00hi\x00\x00"
        )
        reader = BufferPeer(bytes(peer.sent))
        assert [await reader.get_var() for _ in range(5)] == [None, True, 2**40, 0.5, "hi"]


async def test_put_var_value_with_no_godot_type_raises() -> None:
    with trio.fail_after(5):
        with pytest.raises(TypeError):
            await BufferPeer().put_var(object())


async def test_malformed_var_is_none_and_the_stream_stays_in_step() -> None:
    with trio.fail_after(5):
        garbage = b"\x08\x00\x00\x00" + b"\xff\xff\x00\x00\x00\x00\x00\x00"  # unknown type
        good = b"\x08\x00\x00\x00" + b"\x02\x00\x00\x00\x05\x00\x00\x00"
        peer = BufferPeer(garbage + good)
        assert await peer.get_var() is None
        assert await peer.get_var() == 5
        assert not peer.desynced


@pytest.mark.parametrize("prefix", [b"\xff\xff\xff\x7f", b"\x01\x00\x00\x01", b"\xff\xff\xff\xff"])
async def test_oversized_or_negative_var_length_is_refused(prefix: bytes) -> None:
    with trio.fail_after(5):
        peer = BufferPeer(prefix + b"\x00" * 16)
        assert await peer.get_var(allow_objects=True) is None
        assert peer.desynced
        assert peer.get_available_bytes() == 16


async def test_bad_argument_types() -> None:
    with trio.fail_after(5):
        peer = BufferPeer()
        assert await peer.put_u8("3") == Error.ERR_INVALID_PARAMETER  # type: ignore[arg-type]
        assert await peer.put_float([1]) == Error.ERR_INVALID_PARAMETER  # type: ignore[arg-type]
        assert await peer.put_string(5) == Error.ERR_INVALID_PARAMETER  # type: ignore[arg-type]
        assert await peer.get_string("x") == ""  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            await peer.put_u32(object())  # type: ignore[arg-type]
        assert peer.sent == b""
