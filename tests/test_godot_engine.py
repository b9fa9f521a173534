"""A real Godot engine (Debian's godot3-server, Godot 3.2) as the peer, byte for byte.

Godot 3 and 4 share the StreamPeer layouts and the Variant numbers and layout of nil,
bool, int, float and String, so these checks hold for Godot 4 too.  One engine launch per
direction runs the whole exchange of ``tests/godot/exchange.gd``:

1. trionet writes the value sequence; Godot echoes the raw bytes it read (as hex), which
   must equal :data:`EXPECTED` exactly;
2. trionet writes it again; Godot reads it with its typed getters and replies ``ok``;
3. Godot writes the sequence; trionet reads raw bytes, which must equal :data:`EXPECTED`;
4. Godot writes it again; trionet's typed getters must give the values back.

The tests skip when godot3-server is missing, except under CI (``CI`` set), where they fail.
"""

from __future__ import annotations

import os
import shutil
import socket
import struct
import subprocess
from pathlib import Path

import pytest
import trio

from trionet import Error, StreamPeer, StreamPeerTCP, TCPServer

GODOT = shutil.which("godot3-server")
PEERS = Path(__file__).resolve().parent / "godot"
TIMEOUT = 30

pytestmark = pytest.mark.skipif(
    GODOT is None and not os.environ.get("CI"),
    reason="godot3-server is not installed (CI installs it; set CI to make this a failure)",
)


def _var(header: int, payload: bytes) -> bytes:
    body = struct.pack("<I", header) + payload
    return struct.pack("<I", len(body)) + body


#: The exact bytes of the value sequence, written out independently of trionet's encoders.
EXPECTED = b"".join(
    [
        b"\xc8",  # put_u8(200)
        b"\x2c",  # put_u8(300): the low 8 bits
        struct.pack("<b", -100),
        b"\xc8",  # put_8(200)
        struct.pack("<H", 60000),
        struct.pack("<H", 70000 & 0xFFFF),
        struct.pack("<h", -30000),
        struct.pack("<I", 4_000_000_000),
        struct.pack("<i", -2_000_000_000),
        struct.pack("<Q", 9_000_000_000_000_000_000),
        struct.pack("<q", -9_000_000_000_000_000_000),
        struct.pack("<f", 1.5),
        struct.pack("<d", 0.1),
        struct.pack(">H", 258),
        struct.pack(">i", -2),
        struct.pack(">f", -0.25),
        struct.pack(">d", 1e100),
        struct.pack("<I", 5) + b"hello",
        struct.pack("<I", 10) + "héllo ✓".encode(),
        _var(0, b""),
        _var(1, struct.pack("<I", 1)),
        _var(2, struct.pack("<i", 7)),
        _var(2, struct.pack("<i", -7)),
        _var(2 | 1 << 16, struct.pack("<q", 1 << 40)),
        _var(3, struct.pack("<f", 1.5)),
        _var(3 | 1 << 16, struct.pack("<d", 0.1)),
        _var(4, struct.pack("<I", 2) + b"hi\x00\x00"),
    ]
)


async def put_sequence(peer: StreamPeer) -> None:
    """The sequence of exchange.gd's put_sequence, through trionet's typed writers."""
    for method, value in [
        ("put_u8", 200),
        ("put_u8", 300),
        ("put_8", -100),
        ("put_8", 200),
        ("put_u16", 60000),
        ("put_u16", 70000),
        ("put_16", -30000),
        ("put_u32", 4_000_000_000),
        ("put_32", -2_000_000_000),
        ("put_u64", 9_000_000_000_000_000_000),
        ("put_64", -9_000_000_000_000_000_000),
        ("put_float", 1.5),
        ("put_double", 0.1),
    ]:
        assert await getattr(peer, method)(value) == Error.OK
    peer.big_endian = True
    await peer.put_u16(258)
    await peer.put_32(-2)
    await peer.put_float(-0.25)
    await peer.put_double(1e100)
    peer.big_endian = False
    await peer.put_string("hello")
    await peer.put_utf8_string("héllo ✓")
    for value in [None, True, 7, -7, 1 << 40, 1.5, 0.1, "hi"]:
        assert await peer.put_var(value) == Error.OK


async def read_sequence(peer: StreamPeer) -> list[object]:
    """Read the sequence with trionet's typed getters."""
    values: list[object] = [
        await peer.get_u8(),
        await peer.get_u8(),
        await peer.get_8(),
        await peer.get_8(),
        await peer.get_u16(),
        await peer.get_u16(),
        await peer.get_16(),
        await peer.get_u32(),
        await peer.get_32(),
        await peer.get_u64(),
        await peer.get_64(),
        await peer.get_float(),
        await peer.get_double(),
    ]
    peer.big_endian = True
    values += [await peer.get_u16(), await peer.get_32(), await peer.get_float()]
    values.append(await peer.get_double())
    peer.big_endian = False
    values += [await peer.get_string(), await peer.get_utf8_string()]
    values += [await peer.get_var() for _ in range(8)]
    return values


VALUES = [
    200, 44, -100, -56, 60000, 4464, -30000, 4_000_000_000, -2_000_000_000,
    9_000_000_000_000_000_000, -9_000_000_000_000_000_000, 1.5, 0.1,
    258, -2, -0.25, 1e100,
    "hello", "héllo ✓",
    None, True, 7, -7, 1 << 40, 1.5, 0.1, "hi",
]  # fmt: skip


async def exchange(peer: StreamPeerTCP) -> None:
    """trionet's side of exchange.gd's run()."""
    assert await peer.put_u32(len(EXPECTED)) == Error.OK
    await put_sequence(peer)
    assert await peer.get_utf8_string() == EXPECTED.hex()  # phase 1
    await put_sequence(peer)
    assert await peer.get_utf8_string() == "ok"  # phase 2
    assert await peer.get_data(len(EXPECTED)) == (Error.OK, EXPECTED)  # phase 3
    got = await read_sequence(peer)  # phase 4
    assert got == VALUES
    assert [type(v) for v in got] == [type(v) for v in VALUES]


async def start_godot(script: str, port: int, tmp_path: Path) -> trio.Process:
    if GODOT is None:
        pytest.fail("godot3-server is required under CI but is not installed")
    env = {**os.environ, "HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path)}
    return await trio.lowlevel.open_process(
        [GODOT, "--path", str(PEERS), "-s", script, "--", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )


async def collect(stream: trio.abc.ReceiveStream | None, into: bytearray) -> None:
    assert stream is not None
    async for chunk in stream:
        into += chunk


async def finish(process: trio.Process, out: bytearray, err: bytearray) -> None:
    code = await process.wait()
    assert code == 0, f"godot exited {code}\nstdout: {out.decode()}\nstderr: {err.decode()}"
    assert b"DONE" in out


async def test_godot_client_against_trionet_server(tmp_path: Path) -> None:
    with trio.fail_after(TIMEOUT):
        async with TCPServer() as server:
            assert server.listen(0, "127.0.0.1") == Error.OK
            process = await start_godot("client.gd", server.get_local_port(), tmp_path)
            out, err = bytearray(), bytearray()
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(collect, process.stdout, out)
                    nursery.start_soon(collect, process.stderr, err)
                    await server.wait_connection()
                    peer = server.take_connection()
                    assert peer is not None
                    await exchange(peer)
                    assert await peer.get_data(1) == (Error.ERR_FILE_EOF, b"")
                    await finish(process, out, err)
            finally:
                process.kill()
                with trio.CancelScope(shield=True):
                    await process.wait()


async def test_trionet_client_against_godot_server(tmp_path: Path) -> None:
    with socket.socket() as probe:  # Godot 3's TCP_Server cannot report a port 0 choice
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with trio.fail_after(TIMEOUT):
        process = await start_godot("server.gd", port, tmp_path)
        out, err = bytearray(), bytearray()
        try:
            async with trio.open_nursery() as nursery, StreamPeerTCP() as peer:
                nursery.start_soon(collect, process.stderr, err)
                assert process.stdout is not None
                while b"LISTENING" not in out:
                    chunk = await process.stdout.receive_some()
                    assert chunk, f"godot ended before listening: {err.decode()}"
                    out += chunk
                nursery.start_soon(collect, process.stdout, out)
                assert peer.connect_to_host("127.0.0.1", port) == Error.OK
                await peer.wait()
                assert peer.poll() == Error.OK
                assert peer.get_status() == StreamPeerTCP.STATUS_CONNECTED
                await exchange(peer)
                await finish(process, out, err)
                await peer.wait()
                peer.poll()
                assert peer.get_status() == StreamPeerTCP.STATUS_NONE  # Godot closed
        finally:
            process.kill()
            with trio.CancelScope(shield=True):
                await process.wait()
