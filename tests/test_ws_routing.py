"""Refusals, paths, subprotocols, http_handler and the serve style, seen by real clients."""

from __future__ import annotations

from typing import Any

import pytest
import trio
from websockets.exceptions import ConnectionClosedOK, InvalidStatus

from .test_ws_interop import in_thread, sync_client, url
from .wshelpers import HOST, TIMEOUT, Recorder, read_response, serve


def status_of(address: str, **options: Any) -> int:
    with pytest.raises(InvalidStatus) as info:
        sync_client(address, **options).__enter__()
    return info.value.response.status_code


async def test_on_connection_returning_none_is_403() -> None:
    with trio.fail_after(TIMEOUT):
        async with serve(Recorder(refuse=True)) as wss:
            assert await in_thread(lambda: status_of(url(wss))) == 403


async def test_path_other_paths_get_404() -> None:
    recorder = Recorder()

    def conversation(address: str) -> str:
        with sync_client(address) as ws:
            ws.send("on /ws")
            return ws.recv(timeout=5)

    with trio.fail_after(TIMEOUT):
        async with serve(recorder, path="/ws") as wss:
            assert wss.path == "/ws"
            assert await in_thread(lambda: conversation(url(wss, "/ws?x=1"))) == "on /ws"
            assert await in_thread(lambda: status_of(url(wss, "/other"))) == 404
            await recorder.error.wait()
            assert "404" in recorder.errors()[0]


@pytest.mark.parametrize(
    ("offered", "expected"), [(["a", "b"], "b"), (["a"], "a"), (["c"], None), (None, None)]
)
async def test_subprotocol_by_server_preference(offered: Any, expected: str | None) -> None:
    def conversation(address: str) -> str | None:
        with sync_client(address, subprotocols=offered) as ws:
            return ws.subprotocol

    with trio.fail_after(TIMEOUT):
        async with serve(subprotocols=("b", "a")) as wss:
            assert await in_thread(lambda: conversation(url(wss))) == expected


async def test_subprotocol_chooser_function() -> None:
    seen: list[Any] = []

    def choose(request: Any) -> str | None:
        seen.append(request.subprotocols)
        return request.subprotocols[-1]

    def conversation(address: str) -> str | None:
        with sync_client(address, subprotocols=["x", "y"]) as ws:
            return ws.subprotocol

    with trio.fail_after(TIMEOUT):
        async with serve(subprotocols=choose) as wss:
            assert await in_thread(lambda: conversation(url(wss))) == "y"
    assert seen == [("x", "y")]


@pytest.mark.parametrize("style", ["sync", "async"])
async def test_http_handler_serves_plain_requests_on_the_same_port(style: str) -> None:
    requests: list[Any] = []

    def page(request: Any) -> Any:
        requests.append(request)
        return 200, {"Content-Type": "text/html", "X-Page": "1"}, b"<h1>hi</h1>"

    async def async_page(request: Any) -> Any:
        await trio.lowlevel.checkpoint()
        return page(request)

    def conversation(address: str) -> str:
        with sync_client(address) as ws:
            ws.send("still a websocket")
            return ws.recv(timeout=5)

    handler = page if style == "sync" else async_page
    with trio.fail_after(TIMEOUT):
        async with serve(http_handler=handler) as wss:
            async with await trio.open_tcp_stream(HOST, wss.port) as stream:
                await stream.send_all(b"GET /index.html?q=1 HTTP/1.1\r\nHost: x\r\n\r\n")
                status, headers, body = await read_response(stream)
            assert (status, headers["x-page"], headers["content-type"]) == (200, "1", "text/html")
            assert body == b"<h1>hi</h1>"
            assert await in_thread(lambda: conversation(url(wss))) == "still a websocket"
    assert requests[0].method == "GET"
    assert requests[0].path == "/index.html"
    assert requests[0].query == {"q": "1"}


async def test_http_handler_gets_the_body_and_its_failure_is_500() -> None:
    def page(request: Any) -> Any:
        if request.body == b"fail":
            raise ValueError("no")
        return 201, [], request.body[::-1]

    recorder = Recorder()
    with trio.fail_after(TIMEOUT):
        async with serve(recorder, http_handler=page) as wss:
            for body, expected in ((b"abc", (201, b"cba")), (b"fail", (500, None))):
                async with await trio.open_tcp_stream(HOST, wss.port) as stream:
                    head = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body)
                    await stream.send_all(head + body)
                    status, _, got = await read_response(stream)
                assert status == expected[0]
                if expected[1] is not None:
                    assert got == expected[1]
            await recorder.error.wait()
            assert "http_handler" in recorder.errors()[0]


async def test_without_http_handler_plain_get_is_426() -> None:
    with trio.fail_after(TIMEOUT):
        async with serve() as wss, await trio.open_tcp_stream(HOST, wss.port) as stream:
            await stream.send_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            status, headers, body = await read_response(stream)
    assert status == 426
    assert headers["upgrade"] == "websocket"
    assert b"WebSocket" in body


async def test_serve_style_and_connection_properties() -> None:
    seen: list[Any] = []
    server: list[Any] = []

    async def serve_fn(ws: Any) -> None:
        seen.append((ws.id, ws.status, ws.wss is server[0], ws in server[0].connections))
        async for event in ws.events():
            if event.type == "message":
                await ws.send(event.data)
                if event.data == "last":
                    return

    def conversation(address: str) -> tuple[str, str, int | None]:
        with sync_client(address) as ws:
            ws.send("one")
            first = ws.recv(timeout=5)
            ws.send("last")
            second = ws.recv(timeout=5)
            with pytest.raises(ConnectionClosedOK):  # serve() returned: 1000
                ws.recv(timeout=5)
            return first, second, ws.close_code

    with trio.fail_after(TIMEOUT):
        async with serve(serve_fn) as wss:
            server.append(wss)
            for _ in range(2):
                got = await in_thread(lambda: conversation(url(wss)))
                assert got == ("one", "last", 1000)
    assert len({s[0] for s in seen}) == 2
    assert all(s[1:] == ("Connected", True, True) for s in seen)
