"""Raw-socket frames after a valid handshake: RFC 6455 violations, limits, the close handshake."""

from __future__ import annotations

import json
import struct

import pytest
import trio

from .wshelpers import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    TIMEOUT,
    Recorder,
    close_frame,
    frame,
    mask_payload,
    raw_client,
    serve,
)


async def _fails_with(frames: list[bytes], code: int, **options: object) -> Recorder:
    """Send ``frames``; the server closes with ``code``, then TCP; its error names the code."""
    recorder = Recorder()
    with trio.fail_after(TIMEOUT):
        async with serve(recorder, **options) as wss, raw_client(wss.port) as client:
            for data in frames:
                await client.send(data)
            got, _ = await client.read_close()
            assert got == code
            await client.send(close_frame(code))
            await client.finish()
            conn = await recorder.last_terminated()
            errors = conn.of("error")
            assert len(errors) == 1
            assert str(code) in errors[0].errors[0].message
            assert conn.events[-1].type == "terminate"
            assert conn.events[-1].code == code
    return recorder


async def test_text_and_binary_echo_and_fragments_reassembled() -> None:
    with trio.fail_after(TIMEOUT):
        async with serve() as wss, raw_client(wss.port) as client:
            await client.send(frame(OP_TEXT, "héllo".encode()))
            assert await client.read_frame() == (0x81, OP_TEXT, "héllo".encode())
            await client.send(frame(OP_BINARY, b"\x00\xff"))
            assert await client.read_frame() == (0x82, OP_BINARY, b"\x00\xff")
            # Fragments, with a ping in between, make one message.
            await client.send(frame(OP_TEXT, b"ab", fin=False))
            await client.send(frame(OP_PING, b"mid"))
            await client.send(frame(OP_CONT, b"cd", fin=False))
            await client.send(frame(OP_CONT, b"ef"))
            assert await client.read_frame() == (0x8A, OP_PONG, b"mid")
            assert await client.read_frame() == (0x81, OP_TEXT, b"abcdef")


async def test_ping_is_answered_with_the_same_payload() -> None:
    with trio.fail_after(TIMEOUT):
        async with serve() as wss, raw_client(wss.port) as client:
            for payload in (b"", b"x", bytes(range(125))):
                await client.send(frame(OP_PING, payload))
                assert await client.read_frame() == (0x8A, OP_PONG, payload)


async def test_invalid_utf8_text_is_1007() -> None:
    await _fails_with([frame(OP_TEXT, b"ok\xff")], 1007)


async def test_invalid_utf8_fails_on_the_first_fragment() -> None:
    # The message never ends: the server must fail on the invalid byte itself.
    await _fails_with(
        [frame(OP_TEXT, b"fine", fin=False), frame(OP_CONT, b"\xc0", fin=False)], 1007
    )


async def test_utf8_split_across_fragments_is_fine() -> None:
    encoded = "é€".encode()
    with trio.fail_after(TIMEOUT):
        async with serve() as wss, raw_client(wss.port) as client:
            await client.send(frame(OP_TEXT, encoded[:1], fin=False))
            await client.send(frame(OP_CONT, encoded[1:3], fin=False))
            await client.send(frame(OP_CONT, encoded[3:]))
            assert await client.read_frame() == (0x81, OP_TEXT, encoded)


@pytest.mark.parametrize(
    "data",
    [
        frame(3, b"x"),  # reserved opcode
        frame(0xB, b"x"),  # reserved control opcode
        frame(OP_TEXT, b"x", rsv=0b100),  # RSV1 without an extension
        frame(OP_TEXT, b"x", rsv=0b010),
        frame(OP_TEXT, b"x", masked=False),  # clients must mask
        frame(OP_CONT, b"x"),  # continuation without a message
        frame(OP_PING, b"x", fin=False),  # fragmented control frame
        frame(OP_PING, b"x" * 126),  # control frame over 125 bytes
    ],
    ids=["opcode3", "opcode11", "rsv1", "rsv2", "unmasked", "stray-cont", "frag-ping", "big-ping"],
)
async def test_protocol_violations_are_1002(data: bytes) -> None:
    await _fails_with([data], 1002, compression=False)


async def test_new_message_inside_a_fragmented_one_is_1002() -> None:
    await _fails_with([frame(OP_TEXT, b"a", fin=False), frame(OP_TEXT, b"b")], 1002)


async def test_message_over_max_message_size_is_1009() -> None:
    await _fails_with([frame(OP_BINARY, b"x" * 1025)], 1009, max_message_size=1024)


async def test_exactly_max_message_size_passes() -> None:
    with trio.fail_after(TIMEOUT):
        async with serve(max_message_size=1024) as wss, raw_client(wss.port) as client:
            await client.send(frame(OP_BINARY, b"x" * 1024))
            assert await client.read_frame() == (0x82, OP_BINARY, b"x" * 1024)


async def test_fragmented_message_over_the_limit_is_1009_before_it_ends() -> None:
    parts = [frame(OP_BINARY, b"x" * 600, fin=False), frame(OP_CONT, b"x" * 600, fin=False)]
    await _fails_with(parts, 1009, max_message_size=1024)


async def test_text_size_counts_utf8_bytes() -> None:
    # 400 characters, 1200 bytes: over a 1024-byte limit.
    await _fails_with([frame(OP_TEXT, ("€" * 400).encode())], 1009, max_message_size=1024)


async def test_fragment_count_cap_is_1009() -> None:
    # max_message_size 1024 allows max(16, 1024 // 64) = 16 frames per message.
    parts = [frame(OP_TEXT, b"", fin=False)] + [frame(OP_CONT, b"", fin=False)] * 16
    await _fails_with(parts, 1009, max_message_size=1024)


async def test_invalid_json_with_object_data_type_is_1007() -> None:
    recorder = await _fails_with([frame(OP_TEXT, b"{not json")], 1007, data_type="object")
    assert "JSON" in recorder.conns[0].of("error")[0].errors[0].message


async def test_object_data_type_parses_json() -> None:
    recorder = Recorder()
    with trio.fail_after(TIMEOUT):
        async with serve(recorder, data_type="object") as wss, raw_client(wss.port) as client:
            await client.send(frame(OP_TEXT, b'{"a": [1, 2]}'))
            got = await client.read_frame()
            assert got is not None
            assert json.loads(got[2]) == {"a": [1, 2]}
            assert recorder.conns[0].of("message")[0].data == {"a": [1, 2]}


@pytest.mark.parametrize("code", [999, 1004, 1005, 1006, 1015, 2999, 5000])
async def test_invalid_close_code_is_answered_with_1002(code: int) -> None:
    await _fails_with([close_frame(code)], 1002)


async def test_close_reason_not_utf8_is_1007() -> None:
    await _fails_with([close_frame(1000, b"\xff\xfe")], 1007)


async def test_close_frame_with_one_byte_payload_is_1002() -> None:
    await _fails_with([frame(OP_CLOSE, b"\x03")], 1002)


async def _peer_closes(data: bytes) -> tuple[int | None, str, object]:
    """Send a close frame; return the server's answer and its on_terminate event."""
    recorder = Recorder()
    with trio.fail_after(TIMEOUT):
        async with serve(recorder) as wss, raw_client(wss.port) as client:
            await client.send(data)
            answer = await client.read_close()
            await client.finish()
            conn = await recorder.last_terminated()
            assert conn.of("error") == []
            return answer[0], answer[1], conn.events[-1]


async def test_close_frame_without_code_gives_1005() -> None:
    code, _, event = await _peer_closes(close_frame())
    assert code is None  # the answer echoes the empty close frame
    assert event.code == 1005  # type: ignore[attr-defined]


async def test_close_with_code_and_reason_reaches_on_terminate() -> None:
    code, _, event = await _peer_closes(close_frame(4001, "bien reçu".encode()))
    assert code == 4001
    assert (event.code, event.reason) == (4001, "bien reçu")  # type: ignore[attr-defined]


async def test_peer_dropping_tcp_gives_1006_and_an_error() -> None:
    recorder = Recorder()
    with trio.fail_after(TIMEOUT):
        async with serve(recorder) as wss:
            async with raw_client(wss.port) as client:
                await client.send(frame(OP_TEXT, b"hi"))
                assert await client.read_frame() == (0x81, OP_TEXT, b"hi")
            conn = await recorder.last_terminated()
            assert [e.type for e in conn.events] == ["open", "message", "error", "terminate"]
            assert conn.events[-1].code == 1006
            assert "1006" in conn.of("error")[0].errors[0].message


async def test_server_close_waits_for_the_peer_close_then_fin() -> None:
    recorder = Recorder()
    with trio.fail_after(TIMEOUT):
        async with serve(recorder) as wss, raw_client(wss.port) as client:
            await recorder.accepted.wait()
            ws = wss.connections[0]
            closing = ws.terminate(4000, "bye")
            code, reason = await client.read_close()
            assert (code, reason) == (4000, "bye")
            # The server keeps reading: it discards data frames until our close frame.
            await client.send(frame(OP_TEXT, b"late"))
            assert ws.status == "Closing"
            await client.send(close_frame(4000, b"ok"))
            await client.finish()
            await closing
            assert ws.status == "Closed"
            conn = recorder.conns[0]
            assert conn.of("message") == []
            # on_terminate reports the close frame received (RFC 6455 7.1.5).
            assert (conn.events[-1].code, conn.events[-1].reason) == (4000, "ok")
            assert ws not in wss.connections


async def test_server_close_to_a_silent_peer_is_cut_off_after_close_timeout() -> None:
    recorder = Recorder()
    with trio.fail_after(TIMEOUT):
        async with serve(recorder, close_timeout=0.3) as wss, raw_client(wss.port) as client:
            await recorder.accepted.wait()
            start = trio.current_time()
            await wss.connections[0].terminate()
            assert trio.current_time() - start < 2
            assert (await client.read_close())[0] == 1000
            await client.finish()


async def test_reason_only_sent_with_codes_above_3000() -> None:
    recorder = Recorder()
    with trio.fail_after(TIMEOUT):
        async with serve(recorder) as wss, raw_client(wss.port) as client:
            await recorder.accepted.wait()
            wss.connections[0].terminate(1000, "not sent")
            assert await client.read_close() == (1000, "")
            await client.send(close_frame(1000))


async def test_data_after_close_frame_is_ignored() -> None:
    with trio.fail_after(TIMEOUT):
        async with serve() as wss, raw_client(wss.port) as client:
            await client.send(close_frame(1000) + frame(OP_TEXT, b"after"))
            assert (await client.read_close())[0] == 1000
            await client.finish()


async def test_many_frames_in_one_segment() -> None:
    with trio.fail_after(TIMEOUT):
        async with serve() as wss, raw_client(wss.port) as client:
            await client.send(b"".join(frame(OP_TEXT, str(i).encode()) for i in range(50)))
            for i in range(50):
                assert await client.read_frame() == (0x81, OP_TEXT, str(i).encode())


async def test_extended_lengths_16_and_64_bits() -> None:
    with trio.fail_after(TIMEOUT):
        async with serve(max_message_size=1 << 20) as wss, raw_client(wss.port) as client:
            for size in (126, 65535, 65536, 200_000):
                await client.send(frame(OP_BINARY, b"z" * size))
                assert await client.read_frame() == (0x82, OP_BINARY, b"z" * size)


async def test_non_minimal_length_encoding_is_1002() -> None:
    # RFC 6455 5.2: "the minimal number of bytes MUST be used to encode the length".
    mask = b"\x01\x02\x03\x04"
    data = struct.pack("!BBQ", 0x82, 0x80 | 127, 3) + mask + mask_payload(b"abc", mask)
    await _fails_with([data], 1002)
