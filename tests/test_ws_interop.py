"""Independent clients against the server: websockets (sync and trio) and trio-websocket.

Messages of every kind, fragmentation, ping/pong, compression on and off, close codes
both ways, and a failing handler that ends only its own connection.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
import trio_websocket
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as sync_connect

from .wshelpers import HOST, TIMEOUT, Recorder, serve

try:
    from websockets.trio.client import connect as trio_connect
except ImportError:  # pragma: no cover - websockets older than its trio client
    trio_connect = None

needs_trio_client = pytest.mark.skipif(trio_connect is None, reason="no websockets.trio")


def url(wss: Any, path: str = "/") -> str:
    return f"ws://{HOST}:{wss.port}{path}"


def sync_client(address: str, **options: Any) -> Any:
    options.setdefault("open_timeout", 5)
    options.setdefault("close_timeout", 5)
    return sync_connect(address, proxy=None, **options)


@asynccontextmanager
async def tw_client(address: str) -> AsyncIterator[trio_websocket.WebSocketConnection]:
    """trio-websocket's client, closing the TCP stream that it leaks.

    When the server closes, trio-websocket (0.12) answers, sees the server's FIN and
    stops reading, but never closes its own socket (a ResourceWarning at collection).
    """
    async with trio_websocket.open_websocket_url(address) as ws:
        try:
            yield ws
        finally:
            stream = ws._stream
    await stream.aclose()


async def in_thread(fn: Any) -> Any:
    return await trio.to_thread.run_sync(fn)


@pytest.mark.parametrize("compression", [True, False])
async def test_sync_client_echoes_text_binary_and_fragments(compression: bool) -> None:
    recorder = Recorder()

    def conversation(address: str) -> tuple[list[Any], str | None]:
        with sync_client(address, compression="deflate" if compression else None) as ws:
            got = []
            ws.send("héllo")
            got.append(ws.recv(timeout=5))
            ws.send(b"\x00\x01\xff")
            got.append(ws.recv(timeout=5))
            ws.send(["frag", "ment", "ed"])  # three frames, one message
            got.append(ws.recv(timeout=5))
            ws.send([b"a", b"b"])
            got.append(ws.recv(timeout=5))
            ws.send("x" * 300_000)  # compresses well, spans many TCP segments
            got.append(len(ws.recv(timeout=5)))
            ws.ping(b"are you there").wait(5)
            return got, ws.response.headers.get("Sec-WebSocket-Extensions")

    with trio.fail_after(TIMEOUT):
        async with serve(recorder) as wss:
            got, extensions = await in_thread(lambda: conversation(url(wss)))
            conn = await recorder.last_terminated()
    assert got == ["héllo", b"\x00\x01\xff", "fragmented", b"ab", 300_000]
    if compression:
        assert extensions is not None
        assert "permessage-deflate" in extensions
    else:
        assert extensions is None
    data = [e.data for e in conn.of("message")]
    assert data[:4] == ["héllo", b"\x00\x01\xff", "fragmented", b"ab"]
    assert conn.events[-1].code == 1000


async def test_compression_off_on_the_server() -> None:
    def conversation(address: str) -> tuple[str, str | None]:
        with sync_client(address) as ws:  # offers permessage-deflate
            ws.send("plain")
            return ws.recv(timeout=5), ws.response.headers.get("Sec-WebSocket-Extensions")

    with trio.fail_after(TIMEOUT):
        async with serve(compression=False) as wss:
            assert await in_thread(lambda: conversation(url(wss))) == ("plain", None)


async def test_object_data_type_with_json() -> None:
    recorder = Recorder()

    def conversation(address: str) -> Any:
        with sync_client(address) as ws:
            ws.send(json.dumps({"a": 1, "b": [True, None]}))
            return json.loads(ws.recv(timeout=5))

    with trio.fail_after(TIMEOUT):
        async with serve(recorder, data_type="object") as wss:
            assert await in_thread(lambda: conversation(url(wss))) == {"a": 1, "b": [True, None]}
            conn = await recorder.last_terminated()
    assert conn.of("message")[0].data == {"a": 1, "b": [True, None]}


async def test_client_close_code_and_reason_reach_on_terminate() -> None:
    recorder = Recorder()

    def conversation(address: str) -> tuple[int, str]:
        with sync_client(address) as ws:
            ws.close(4001, "client leaves")
            return ws.close_code, ws.close_reason

    with trio.fail_after(TIMEOUT):
        async with serve(recorder) as wss:
            assert await in_thread(lambda: conversation(url(wss))) == (4001, "client leaves")
            conn = await recorder.last_terminated()
    assert (conn.events[-1].code, conn.events[-1].reason) == (4001, "client leaves")
    assert conn.of("error") == []


@pytest.mark.parametrize(
    ("code", "message", "expected"),
    [(4000, "bye", (4000, "bye")), (None, "", (1000, "")), (1000, "dropped", (1000, ""))],
)
async def test_server_terminate_code_reaches_the_client(
    code: int | None, message: str, expected: tuple[int, str]
) -> None:
    recorder = Recorder()

    def conversation(address: str, opened: Any) -> tuple[int, str]:
        with sync_client(address) as ws:
            trio.from_thread.run_sync(opened.set)
            with pytest.raises(ConnectionClosed) as info:
                ws.recv(timeout=5)
            assert info.value.rcvd is not None
            return info.value.rcvd.code, info.value.rcvd.reason

    with trio.fail_after(TIMEOUT):
        async with serve(recorder) as wss, trio.open_nursery() as nursery:
            opened = trio.Event()
            result: list[Any] = []

            async def client() -> None:
                result.append(await in_thread(lambda: conversation(url(wss), opened)))

            nursery.start_soon(client)
            await opened.wait()
            await wss.connections[0].terminate(code, message)
    assert result == [expected]


async def test_server_terminating_sends_1001() -> None:
    def conversation(address: str, opened: Any) -> int:
        with sync_client(address) as ws:
            trio.from_thread.run_sync(opened.set)
            with pytest.raises(ConnectionClosed) as info:
                ws.recv(timeout=5)
            assert info.value.rcvd is not None
            return info.value.rcvd.code

    with trio.fail_after(TIMEOUT):
        result: list[int] = []
        async with serve() as wss, trio.open_nursery() as nursery:
            opened = trio.Event()

            async def client() -> None:
                result.append(await in_thread(lambda: conversation(url(wss), opened)))

            nursery.start_soon(client)
            await opened.wait()
            await wss.terminate()
    assert result == [1001]


def recorder_connection(wss: Any, client: Any) -> Any:
    """The server-side connection of ``client`` (matched by the client's port)."""
    port = client.local.port
    return next(c for c in wss.connections if c.request.remote_address[1] == port)


async def test_failing_handler_closes_only_its_connection_with_1011() -> None:
    recorder = Recorder(fail_on="boom")
    with trio.fail_after(TIMEOUT):
        async with serve(recorder) as wss:
            async with tw_client(url(wss)) as healthy:
                async with tw_client(url(wss)) as doomed:
                    await doomed.send_message("boom")
                    with pytest.raises(trio_websocket.ConnectionClosed) as info:
                        await doomed.get_message()
                    assert info.value.reason.code == 1011
                failed = recorder.conns[1]
                await failed.terminated.wait()
                assert wss.connections == [recorder_connection(wss, healthy)]
                await healthy.send_message("still here")
                assert await healthy.get_message() == "still here"
            assert "failed on purpose" in failed.of("error")[0].errors[0].message
            assert failed.events[-1].code == 1011


async def test_trio_websocket_client_messages_ping_and_close() -> None:
    recorder = Recorder()
    with trio.fail_after(TIMEOUT):
        async with serve(recorder) as wss:
            async with tw_client(url(wss)) as ws:
                await ws.send_message("text")
                assert await ws.get_message() == "text"
                await ws.send_message(b"\x00bin")
                assert await ws.get_message() == b"\x00bin"
                await ws.ping(b"p1")  # returns once the pong came
                await ws.aclose(4002, "done here")
            conn = await recorder.last_terminated()
    assert (conn.events[-1].code, conn.events[-1].reason) == (4002, "done here")


@needs_trio_client
async def test_websockets_trio_client() -> None:
    recorder = Recorder()
    assert trio_connect is not None
    with trio.fail_after(TIMEOUT):
        async with serve(recorder) as wss:
            async with trio_connect(url(wss), proxy=None) as ws:
                await ws.send("via trio")
                assert await ws.recv() == "via trio"
                await ws.send([b"x", b"y", b"z"])
                assert await ws.recv() == b"xyz"
                await ws.ping(b"t")
                await ws.send({"k": "v"} and json.dumps({"k": "v"}))
                assert json.loads(await ws.recv()) == {"k": "v"}
            conn = await recorder.last_terminated()
            assert conn.events[-1].code == 1000
            async with trio_connect(url(wss), proxy=None) as ws:
                await recorder.accepted.wait()
                await wss.connections[0].terminate(4000, "bye")
                with pytest.raises(ConnectionClosed) as info:
                    await ws.recv()
                assert info.value.rcvd is not None
                assert (info.value.rcvd.code, info.value.rcvd.reason) == (4000, "bye")


async def test_server_sends_dict_and_list_as_json_text() -> None:
    class Sender:
        async def on_open(self, ws: Any, event: Any) -> None:
            await ws.send({"hello": ["world", 1]})
            await ws.send([1, 2])

        def on_message(self, ws: Any, event: Any) -> None:
            pass

    class Accept:
        def on_connection(self, wss: Any, event: Any) -> Sender:
            return Sender()

    with trio.fail_after(TIMEOUT):
        async with serve(Accept()) as wss:
            async with tw_client(url(wss)) as ws:
                first = await ws.get_message()
                second = await ws.get_message()
    assert isinstance(first, str)
    assert json.loads(first) == {"hello": ["world", 1]}
    assert json.loads(second) == [1, 2]
