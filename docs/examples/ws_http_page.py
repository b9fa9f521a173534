"""A web page and its WebSocket on one port, with ``http_handler``.

Requests that ask for a WebSocket upgrade go to the server handler (here only on
``/ws``, because of ``path="/ws"``); every other request goes to ``http_handler``, which
returns ``(status, headers, body)``.  The page's script connects back to the same port.

Run ``python ws_http_page.py``: it fetches the page with ``urllib``, then talks to the
WebSocket with the ``websockets`` synchronous client (both in a thread), and exits.  To
try the page in a browser, change ``port=0`` to a fixed port and replace the ``client``
call with ``await trio.sleep_forever()``.
"""

from __future__ import annotations

import urllib.error
import urllib.request

import trio
from websockets.sync.client import connect

import trionet

PAGE = """<!doctype html>
<title>trionet echo</title>
<input id="text" value="hello"> <button onclick="ws.send(text.value)">send</button>
<pre id="log"></pre>
<script>
  const ws = new WebSocket(`ws://${location.host}/ws`);
  ws.onmessage = (event) => { log.textContent += event.data + "\\n"; };
</script>
"""


def http_handler(request: trionet.WebSocketRequest) -> tuple[int, dict[str, str], str]:
    """Plain HTTP: the page at ``/``, 404 elsewhere.  May also be an ``async def``."""
    if request.method == "GET" and request.path == "/":
        return 200, {"Content-Type": "text/html; charset=utf-8"}, PAGE
    return 404, {}, f"nothing at {request.path}\n"


class Echo:
    async def on_message(
        self, ws: trionet.WebSocketConnection, event: trionet.WebSocketEvent
    ) -> None:
        await ws.send(event.data)


class Server:
    def on_connection(self, wss: trionet.WebSocketServer, event: trionet.WebSocketEvent) -> Echo:
        return Echo()


def client(port: int) -> None:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
        page = response.read().decode()
        print(f"GET / -> {response.status}, {len(page)} characters of HTML")
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/missing", timeout=5)
    except urllib.error.HTTPError as error:
        print(f"GET /missing -> {error.code}")
    with connect(f"ws://127.0.0.1:{port}/ws") as websocket:
        websocket.send("hello")
        print(f"WebSocket /ws echoed {websocket.recv(timeout=5)!r}")


async def main() -> None:
    with trio.fail_after(10):
        async with trionet.WebSocketServer.new(
            Server(), port=0, path="/ws", http_handler=http_handler
        ) as wss:
            await trio.to_thread.run_sync(client, wss.port)


if __name__ == "__main__":
    trio.run(main)
