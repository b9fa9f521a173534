"""Raw-socket handshakes: malformed and oversized requests, limits, slow-loris, 503 on shutdown."""

from __future__ import annotations

import pytest
import trio

from .wshelpers import (
    HOST,
    OP_TEXT,
    TIMEOUT,
    Recorder,
    close_frame,
    frame,
    raw_client,
    read_response,
    serve,
    upgrade_request,
)


async def _refused(
    data: bytes, status: int, **options: object
) -> tuple[dict[str, str], bytes, Recorder]:
    """Send ``data`` as the request; expect ``status``, then the server's FIN."""
    recorder = Recorder()
    with trio.fail_after(TIMEOUT):
        async with serve(recorder, **options) as wss:
            async with await trio.open_tcp_stream(HOST, wss.port) as stream:
                # Send without waiting for all of it to go: a refusal may come first.
                with trio.move_on_after(2):
                    await stream.send_all(data)
                got, headers, body = await read_response(stream)
                assert got == status, body
                assert headers["connection"] == "close"
                assert await stream.receive_some() == b""
            if status != 403:
                await recorder.error.wait()
            assert recorder.conns == []
            assert wss.connections == []
    return headers, body, recorder


async def test_valid_upgrade_answers_101_with_accept() -> None:
    key = "dGhlIHNhbXBsZSBub25jZQ=="
    with trio.fail_after(TIMEOUT):
        async with serve() as wss:
            async with await trio.open_tcp_stream(HOST, wss.port) as stream:
                await stream.send_all(upgrade_request(key=key))
                status, headers, _ = await read_response(stream)
                assert status == 101
                assert headers["sec-websocket-accept"] == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
                assert headers["upgrade"].lower() == "websocket"


async def test_request_line_over_8k_is_414() -> None:
    data = b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n"
    _, body, recorder = await _refused(data, 414)
    assert "request line" in recorder.errors()[0]
    assert b"request line" in body


async def test_request_line_never_ending_is_414_once_past_the_limit() -> None:
    # No CRLF at all: the server answers as soon as the limit is passed, not at EOF.
    await _refused(b"GET /" + b"a" * 8300, 414)


async def test_more_than_100_headers_is_431() -> None:
    extra = "".join(f"X-H{i}: v\r\n" for i in range(101))
    _, _, recorder = await _refused(upgrade_request(extra=extra), 431)
    assert "100 header" in recorder.errors()[0]


async def test_100_headers_are_fine() -> None:
    extra = "".join(f"X-H{i}: v\r\n" for i in range(95))  # 5 from upgrade_request
    with trio.fail_after(TIMEOUT):
        async with serve() as wss, raw_client(wss.port, extra=extra):
            pass


async def test_header_line_over_8k_is_431() -> None:
    _, _, recorder = await _refused(upgrade_request(extra="X-Big: " + "b" * 8300 + "\r\n"), 431)
    assert "header line" in recorder.errors()[0]


async def test_header_line_never_ending_is_431_once_past_the_limit() -> None:
    data = upgrade_request()[:-2] + b"X-Big: " + b"b" * 8300
    await _refused(data, 431)


async def test_head_over_64k_is_431_without_reading_it_all() -> None:
    extra = "".join(f"X-H{i}: {'v' * 8000}\r\n" for i in range(9))
    data = upgrade_request(extra=extra)[:-2] + b"X-More: " + b"m" * 8000
    # 9 * 8 KB plus the rest is over 64 KiB, and the head never ends.
    _, _, recorder = await _refused(data, 431)
    assert "head larger" in recorder.errors()[0]


async def _send_forever(stream: trio.SocketStream, data: bytes) -> None:
    while True:
        await stream.send_all(data)


async def test_flooding_client_gets_431_and_is_cut_off_within_open_timeout() -> None:
    # A client that streams header lines forever gets its 431 at once; what it sends
    # after that is discarded, and the connection is cut within the open timeout.
    recorder = Recorder()
    line = b"X-Flood: " + b"f" * 1000 + b"\r\n"
    with trio.fail_after(TIMEOUT):
        async with serve(recorder, open_timeout=0.5) as wss:
            async with await trio.open_tcp_stream(HOST, wss.port) as stream:
                await stream.send_all(upgrade_request()[:-2] + line * 70)
                assert (await read_response(stream))[0] == 431
                start = trio.current_time()
                with pytest.raises(trio.BrokenResourceError):
                    await _send_forever(stream, line * 64)
                assert trio.current_time() - start < 3
            await recorder.error.wait()
            assert "431" in recorder.errors()[0]


@pytest.mark.parametrize(
    "data",
    [
        b"NONSENSE\r\n\r\n",
        b"GET / HTTP/1.1 extra\r\n\r\n",
        b"GET / FTP/1.0\r\n\r\n",
        b"G@T / HTTP/1.1\r\n\r\n",
        b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\n\r\n",
    ],
    ids=["one-word", "four-parts", "not-http", "bad-method", "tls-hello"],
)
async def test_garbage_request_line_is_400_with_a_reason(data: bytes) -> None:
    _, body, recorder = await _refused(data, 400)
    assert b"malformed request line" in body or b"not an HTTP request" in body
    assert "400" in recorder.errors()[0]


async def test_malformed_header_is_400() -> None:
    _, body, _ = await _refused(upgrade_request(extra="no colon here\r\n"), 400)
    assert b"malformed header" in body


async def test_version_8_is_426_with_the_supported_version() -> None:
    headers, body, recorder = await _refused(upgrade_request(version="8"), 426)
    assert headers["sec-websocket-version"] == "13"
    assert b"13" in body
    assert "426" in recorder.errors()[0]


async def test_missing_key_is_400() -> None:
    _, body, recorder = await _refused(upgrade_request(key=""), 400)
    assert body.strip()
    assert "400" in recorder.errors()[0]


async def test_closed_before_the_request_ended_is_reported() -> None:
    recorder = Recorder()
    with trio.fail_after(TIMEOUT):
        async with serve(recorder) as wss:
            async with await trio.open_tcp_stream(HOST, wss.port) as stream:
                await stream.send_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
                await stream.send_eof()
                assert (await read_response(stream))[0] == 400
            await recorder.error.wait()
            assert "closed before" in recorder.errors()[0]


async def test_refusal_403_is_not_reported() -> None:
    recorder = Recorder(refuse=True)
    with trio.fail_after(TIMEOUT):
        async with serve(recorder) as wss:
            async with await trio.open_tcp_stream(HOST, wss.port) as stream:
                await stream.send_all(upgrade_request("/x?user=ann&k=1&k=2"))
                assert (await read_response(stream))[0] == 403
            request = recorder.events[0].request
            assert request.path == "/x"
            assert request.url == "/x?user=ann&k=1&k=2"
            assert request.query == {"user": "ann", "k": ["1", "2"]}
            assert request.headers["upgrade"] == "websocket"
            assert request.remote_address[0] == HOST
        assert recorder.errors() == []


async def test_slow_loris_clients_are_dropped_and_others_still_served() -> None:
    recorder = Recorder()
    with trio.fail_after(TIMEOUT):
        async with serve(recorder, open_timeout=0.5) as wss:
            lorises = []
            for _ in range(20):
                stream = await trio.open_tcp_stream(HOST, wss.port)
                await stream.send_all(upgrade_request()[:40])
                lorises.append(stream)
            start = trio.current_time()
            # Meanwhile a normal client handshakes and echoes at once.
            async with raw_client(wss.port) as client:
                await client.send(frame(OP_TEXT, b"hi"))
                assert await client.read_frame() == (0x81, OP_TEXT, b"hi")
            assert trio.current_time() - start < 0.5
            for stream in lorises:
                # Dropped without a response once the open timeout passed.
                assert await stream.receive_some() == b""
                await stream.aclose()
            assert trio.current_time() - start >= 0.4


async def test_silent_client_is_dropped_after_open_timeout() -> None:
    with trio.fail_after(TIMEOUT):
        async with serve(open_timeout=0.3) as wss:
            async with await trio.open_tcp_stream(HOST, wss.port) as stream:
                start = trio.current_time()
                assert await stream.receive_some() == b""
                assert 0.25 <= trio.current_time() - start < 3


async def test_terminate_answers_a_handshake_in_flight_with_503() -> None:
    recorder = Recorder()
    with trio.fail_after(TIMEOUT):
        async with serve(recorder) as wss:
            async with await trio.open_tcp_stream(HOST, wss.port) as stream:
                await stream.send_all(upgrade_request()[:30])
                # Connections are accepted in order: once a later client is open, the
                # half-sent request above is a handshake in flight.
                async with raw_client(wss.port) as client:
                    closing = wss.terminate()
                    status, _, body = await read_response(stream)
                    assert status == 503
                    assert b"shutting down" in body
                    assert (await client.read_close())[0] == 1001
                    await client.send(close_frame(1001))
                    await client.finish()
                await closing
            assert wss.terminated
            assert wss.connections == []
        assert recorder.errors() == []
