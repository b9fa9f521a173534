"""trionet.WebSocket against the websockets library's servers (asyncio in a thread, and trio).

Text, binary and JSON messages, fragmented messages, server pings, compression on and
off, close codes both ways, subprotocols, extra headers, a refused upgrade, a server that
drops the connection or never answers, and masking checked on the wire.
"""

from __future__ import annotations

import contextlib
import json
import socket
from typing import Any

import pytest
import trio

import trionet

from .wsclient_servers import (
    HOST,
    TIMEOUT,
    FrameReader,
    ServerFactory,
    accept_upgrade,
    asyncio_server,
    close_with,
    drop,
    eventually,
    ping_and_wait,
    raw_server,
    trio_serve,
    trio_server,
)

needs_trio_server = pytest.mark.skipif(trio_serve is None, reason="no websockets.trio")


@pytest.fixture(params=["asyncio", pytest.param("trio", marks=needs_trio_server)])
def server(request: pytest.FixtureRequest) -> ServerFactory:
    """Starts a websockets server (asyncio in a thread, or trio) and yields its port."""
    return asyncio_server if request.param == "asyncio" else trio_server


def url(port: int, path: str = "/") -> str:
    return f"ws://{HOST}:{port}{path}"


def connect(address: str, handler: Any = None, **options: Any) -> Any:
    options.setdefault("ping_interval", None)
    options.setdefault("close_timeout", 2)
    options.setdefault("open_timeout", 5)
    return trionet.WebSocket.new(address, handler, **options)


async def next_event(ws: Any) -> Any:
    return await ws.events().receive()


async def rest_of(ws: Any) -> list[Any]:
    """Every remaining event, up to and including ``terminate``."""
    return [event async for event in ws.events()]


async def echo(ws: Any) -> None:
    async for message in ws:
        await ws.send(message)


async def test_text_binary_and_status(server: ServerFactory) -> None:
    with trio.fail_after(TIMEOUT):
        async with server(echo) as port, connect(url(port, "/room?x=1")) as ws:
            assert ws.status == "Connecting"
            assert ws.url == url(port, "/room?x=1")
            assert isinstance(ws.id, int)
            assert (await next_event(ws)).type == "open"
            assert ws.status == "Connected"
            assert ws.protocol is None
            assert ws.data_type == "text"
            await ws.send("héllo ✓")
            assert (await next_event(ws)).data == "héllo ✓"
            await ws.send(b"\x00\x01\xff")
            assert (await next_event(ws)).data == b"\x00\x01\xff"
            await ws.send(bytearray(b"ba"))
            assert (await next_event(ws)).data == b"ba"
            await ws.terminate()
            events = await rest_of(ws)
        assert [e.type for e in events] == ["terminate"]
        assert events[0].code == 1000
        assert ws.status == "Closed"


async def test_json_objects_and_blob(server: ServerFactory) -> None:
    with trio.fail_after(TIMEOUT):
        async with server(echo) as port:
            async with connect(url(port), data_type="object") as ws:
                assert (await next_event(ws)).type == "open"
                await ws.send({"a": [1, 2.5, None], "b": "ü"})
                assert (await next_event(ws)).data == {"a": [1, 2.5, None], "b": "ü"}
                await ws.send([1, "two"])
                assert (await next_event(ws)).data == [1, "two"]
                await ws.send(json.dumps({"sent": "as text"}))
                assert (await next_event(ws)).data == {"sent": "as text"}
            async with connect(url(port), data_type="blob") as ws:
                assert (await next_event(ws)).type == "open"
                await ws.send("text")
                assert (await next_event(ws)).data == b"text"


async def test_invalid_json_from_the_server_closes_with_1007(server: ServerFactory) -> None:
    seen: list[Any] = []

    async def send_garbage(ws: Any) -> None:
        await ws.send("{not json")
        with contextlib.suppress(Exception):
            await ws.recv()
        seen.append(ws.close_code)

    with trio.fail_after(TIMEOUT):
        async with server(send_garbage) as port, connect(url(port), data_type="object") as ws:
            events = await rest_of(ws)
            await eventually(lambda: seen)
    assert [e.type for e in events] == ["open", "error", "terminate"]
    assert events[-1].code == 1007
    assert seen == [1007]


async def test_fragmented_messages_from_the_server(server: ServerFactory) -> None:
    async def fragments(ws: Any) -> None:
        await ws.send(["frag", "ment", "ed ✓"])  # one text message in three frames
        await ws.send([b"\x00", b"\x01", b"\x02"])
        await ws.recv()

    with trio.fail_after(TIMEOUT):
        async with server(fragments) as port, connect(url(port), compression=False) as ws:
            assert (await next_event(ws)).type == "open"
            assert (await next_event(ws)).data == "fragmented ✓"
            assert (await next_event(ws)).data == b"\x00\x01\x02"


async def test_server_ping_is_answered(server: ServerFactory) -> None:
    async def pinger(ws: Any) -> None:
        await ping_and_wait(ws, b"are you there")
        await ws.send("ponged")
        await ws.recv()

    with trio.fail_after(TIMEOUT):
        async with server(pinger, ping_interval=None) as port, connect(url(port)) as ws:
            assert (await next_event(ws)).type == "open"
            assert (await next_event(ws)).data == "ponged"


@pytest.mark.parametrize(
    ("client_compression", "server_compression", "negotiated"),
    [(True, "deflate", True), (False, "deflate", False), (True, None, False)],
)
async def test_compression(
    server: ServerFactory,
    client_compression: bool,
    server_compression: str | None,
    negotiated: bool,
) -> None:
    seen: dict[str, Any] = {}

    async def record(ws: Any) -> None:
        seen["offer"] = ws.request.headers.get("Sec-WebSocket-Extensions")
        seen["answer"] = ws.response.headers.get("Sec-WebSocket-Extensions")
        await echo(ws)

    big = "trionet " * 40_000  # compresses well; many TCP segments uncompressed
    with trio.fail_after(TIMEOUT):
        async with (
            server(record, compression=server_compression) as port,
            connect(url(port), compression=client_compression) as ws,
        ):
            assert (await next_event(ws)).type == "open"
            await ws.send(big)
            assert (await next_event(ws)).data == big
            await ws.send(b"\x00" * 100_000)
            assert (await next_event(ws)).data == b"\x00" * 100_000
    if client_compression:
        assert "permessage-deflate" in seen["offer"]
    else:
        assert seen["offer"] is None
    assert (seen["answer"] is not None and "permessage-deflate" in seen["answer"]) == negotiated


async def test_client_close_code_reaches_the_server(server: ServerFactory) -> None:
    seen: list[tuple[int | None, str | None]] = []

    async def record(ws: Any) -> None:
        try:
            async for _ in ws:
                pass
        except Exception:  # ConnectionClosedError: the code is not 1000
            pass
        seen.append((ws.close_code, ws.close_reason))

    with trio.fail_after(TIMEOUT):
        async with server(record) as port, connect(url(port)) as ws:
            assert (await next_event(ws)).type == "open"
            await ws.terminate(4000, "bye")
            events = await rest_of(ws)
            assert ws.status == "Closed"
            await eventually(lambda: seen)
    assert seen == [(4000, "bye")]
    assert [(e.type, e.code, e.reason) for e in events] == [("terminate", 4000, "bye")]


async def test_server_close_code_reaches_the_client(server: ServerFactory) -> None:
    async def closer(ws: Any) -> None:
        await close_with(ws, 4001, "x")

    with trio.fail_after(TIMEOUT):
        async with server(closer) as port, connect(url(port)) as ws:
            events = await rest_of(ws)
            assert ws.status == "Closed"
    assert [e.type for e in events] == ["open", "terminate"]
    assert (events[-1].code, events[-1].reason) == (4001, "x")


async def test_handler_style_client(server: ServerFactory) -> None:
    got: list[Any] = []
    done = trio.Event()

    class Handler:
        async def onOpen(self, ws: Any, event: Any) -> None:  # 4D spelling
            got.append(("open", ws.status))
            await ws.send("one")

        def on_message(self, ws: Any, event: Any) -> None:
            got.append(("message", event.data))
            ws.terminate(4002, "enough")

        def on_error(self, ws: Any, event: Any) -> None:  # pragma: no cover - must not run
            got.append(("error", event.errors))

        def onTerminate(self, ws: Any, event: Any) -> None:
            got.append(("terminate", event.code, event.reason))
            done.set()

    with trio.fail_after(TIMEOUT):
        async with server(echo) as port, connect(url(port), Handler()) as ws:
            await done.wait()
            with pytest.raises(trionet.LocalProtocolError):
                ws.events()
    assert got == [
        ("open", "Connected"),
        ("message", "one"),
        ("terminate", 4002, "enough"),
    ]


async def test_server_drops_the_connection(server: ServerFactory) -> None:
    async def dropper(ws: Any) -> None:
        await ws.recv()
        await drop(ws)

    with trio.fail_after(TIMEOUT):
        async with server(dropper) as port, connect(url(port)) as ws:
            assert (await next_event(ws)).type == "open"
            await ws.send("now")
            events = await rest_of(ws)
            assert ws.status == "Closed"
            with pytest.raises(trionet.ConnectionClosedError):
                await ws.send("too late")
    assert [e.type for e in events] == ["error", "terminate"]
    assert events[-1].code == 1006
    assert events[0].errors


@pytest.mark.parametrize("status", [403, 404, 500])
async def test_refused_upgrade_carries_the_status(server: ServerFactory, status: int) -> None:
    def refuse(ws: Any, request: Any) -> Any:
        return ws.respond(status, "no\n")

    with trio.fail_after(TIMEOUT):
        async with server(echo, process_request=refuse) as port, connect(url(port)) as ws:
            events = await rest_of(ws)
            assert ws.status == "Closed"
            with pytest.raises(trionet.ConnectionClosedError):
                await ws.send("x")
    assert [e.type for e in events] == ["error", "terminate"]
    assert events[0].errors[0].http_status == status
    assert str(status) in events[0].errors[0].message
    assert ws.errors[0].http_status == status
    assert events[-1].code == 1006


async def test_subprotocol_chosen_and_headers_sent(server: ServerFactory) -> None:
    seen: dict[str, Any] = {}

    async def record(ws: Any) -> None:
        headers = ws.request.headers
        seen["auth"] = headers.get("Authorization")
        seen["trace"] = headers.get_all("X-Trace")
        seen["offered"] = headers.get("Sec-WebSocket-Protocol")
        seen["chosen"] = ws.subprotocol
        await echo(ws)

    with trio.fail_after(TIMEOUT):
        async with (
            server(record, subprotocols=["chat.v2", "chat.v1"]) as port,
            connect(
                url(port),
                headers=[("Authorization", "Bearer t0k"), ("X-Trace", "1"), ("X-Trace", "2")],
                subprotocols=["chat.v1", "chat.v2"],
            ) as ws,
        ):
            assert (await next_event(ws)).type == "open"
            await ws.send("sync")  # the server recorded before it echoes
            assert (await next_event(ws)).data == "sync"
            assert ws.protocol == seen["chosen"]
            assert ws.protocol in ("chat.v1", "chat.v2")
    assert seen["auth"] == "Bearer t0k"
    assert seen["trace"] == ["1", "2"]
    assert seen["offered"] == "chat.v1, chat.v2"


async def test_no_subprotocol_in_common_fails_the_upgrade(server: ServerFactory) -> None:
    with trio.fail_after(TIMEOUT):
        async with (
            server(echo, subprotocols=["other"]) as port,
            connect(url(port), subprotocols=["chat"]) as ws,
        ):
            events = await rest_of(ws)
    assert [e.type for e in events] == ["error", "terminate"]
    assert events[0].errors[0].http_status == 400


async def test_headers_as_a_mapping(server: ServerFactory) -> None:
    seen: dict[str, Any] = {}

    async def record(ws: Any) -> None:
        seen["origin"] = ws.request.headers.get("Origin")
        await echo(ws)

    with trio.fail_after(TIMEOUT):
        async with (
            server(record) as port,
            connect(url(port), headers={"Origin": "http://example.test"}) as ws,
        ):
            assert (await next_event(ws)).type == "open"
            await ws.send("sync")
            assert (await next_event(ws)).data == "sync"
    assert seen["origin"] == "http://example.test"


# -- raw servers: the connect timeout and what goes on the wire ------------------------------


async def test_server_that_never_answers_times_out() -> None:
    async def silent(stream: trio.SocketStream) -> None:
        while await stream.receive_some():
            pass

    with trio.fail_after(TIMEOUT):
        async with raw_server(silent) as port:
            start = trio.current_time()
            async with connect(url(port), open_timeout=0.5) as ws:
                await trio.sleep(0.1)
                assert ws.status == "Connecting"
                events = await rest_of(ws)
            elapsed = trio.current_time() - start
    assert [e.type for e in events] == ["error", "terminate"]
    assert "0.5" in events[0].errors[0].message
    assert ws.status == "Closed"
    assert 0.4 < elapsed < 3


async def test_connection_refused() -> None:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port = sock.getsockname()[1]  # bound but not listening: refused
    with trio.fail_after(TIMEOUT):
        async with connect(url(port)) as ws:
            events = await rest_of(ws)
    assert [e.type for e in events] == ["error", "terminate"]
    assert events[0].errors[0].http_status is None
    assert str(port) in events[0].errors[0].message


async def test_a_server_that_closes_during_the_upgrade() -> None:
    async def rude(stream: trio.SocketStream) -> None:
        await stream.receive_some()
        await stream.send_all(b"HTTP/1.1 101 Switch")

    with trio.fail_after(TIMEOUT):
        async with raw_server(rude) as port, connect(url(port)) as ws:
            events = await rest_of(ws)
    assert [e.type for e in events] == ["error", "terminate"]
    assert events[0].errors[0].component_signature == "websocket"


async def test_client_frames_are_masked_with_fresh_keys() -> None:
    frames: list[tuple[bool, int, bytes | None, bytes]] = []

    async def reader(stream: trio.SocketStream) -> None:
        rest = await accept_upgrade(stream)
        frames_in = FrameReader(stream, rest)
        for _ in range(3):
            frames.append(await frames_in.read())
        await stream.send_all(b"\x88\x02\x03\xe8")  # close 1000

    with trio.fail_after(TIMEOUT):
        async with raw_server(reader) as port, connect(url(port)) as ws:
            assert (await next_event(ws)).type == "open"
            await ws.send("same")
            await ws.send("same")
            await ws.send(b"\x00" * 300)  # a 16-bit length
            events = await rest_of(ws)
    assert [(fin, op, payload) for fin, op, _, payload in frames] == [
        (True, 1, b"same"),
        (True, 1, b"same"),
        (True, 2, b"\x00" * 300),
    ]
    keys = [key for _, _, key, _ in frames]
    assert all(key is not None and len(key) == 4 for key in keys)
    assert len(set(keys)) == 3
    assert events[-1].code == 1000


async def test_close_frame_is_masked_and_answered() -> None:
    got: list[tuple[bool, int, bytes | None, bytes]] = []

    async def reader(stream: trio.SocketStream) -> None:
        rest = await accept_upgrade(stream)
        got.append(await FrameReader(stream, rest).read())
        await stream.send_all(b"\x88\x05\x0f\xa0bye")  # close 4000 "bye"
        while await stream.receive_some():
            pass

    with trio.fail_after(TIMEOUT):
        async with raw_server(reader) as port, connect(url(port)) as ws:
            assert (await next_event(ws)).type == "open"
            await ws.terminate(4000, "bye")
            events = await rest_of(ws)
    fin, opcode, key, payload = got[0]
    assert (fin, opcode, payload) == (True, 8, b"\x0f\xa0bye")
    assert key is not None
    assert (events[-1].code, events[-1].reason) == (4000, "bye")


def test_bad_arguments_raise_at_once() -> None:
    with pytest.raises(ValueError, match="ws://"):
        trionet.WebSocket.new("http://example.test/")
    with pytest.raises(TypeError, match="url"):
        trionet.WebSocket.new(b"ws://x/")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="port"):
        trionet.WebSocket.new("ws://h:99999/")
    with pytest.raises(TypeError, match="headers"):
        trionet.WebSocket.new("ws://h/", headers=[("a", 1)])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="subprotocols"):
        trionet.WebSocket.new("ws://h/", subprotocols="chat")
    with pytest.raises(ValueError, match="data_type"):
        trionet.WebSocket.new("ws://h/", data_type="json")
    with pytest.raises(TypeError, match="ssl_context"):
        trionet.WebSocket.new("wss://h/", ssl_context=object())  # type: ignore[arg-type]
