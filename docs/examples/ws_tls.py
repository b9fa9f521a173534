"""Serve ``wss://``: pass an ``ssl.SSLContext`` as ``ssl_context``.

Each accepted connection does its TLS handshake first, inside the open timeout; a failed
TLS handshake closes only that connection (it is logged at debug level).

Run ``python ws_tls.py``: it makes a throw-away certificate authority with ``trustme``
(a test helper; a real server loads its own certificate, see the comments), serves
``wss://localhost``, connects with the ``websockets`` synchronous client trusting that
authority, and exits.
"""

from __future__ import annotations

import ssl

import trio
import trustme
from websockets.sync.client import connect

import trionet


async def serve(ws: trionet.WebSocketConnection) -> None:
    async for event in ws.events():
        if event.type == "message":
            await ws.send(f"over TLS: {event.data}")


def client(port: int, trusted: ssl.SSLContext) -> None:
    with connect(f"wss://localhost:{port}/", ssl=trusted) as websocket:
        websocket.send("hello")
        print(f"client: {websocket.recv(timeout=5)!r}")


async def main() -> None:
    authority = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    # In production: server_context.load_cert_chain("fullchain.pem", "privkey.pem")
    authority.issue_cert("localhost").configure_cert(server_context)
    client_context = ssl.create_default_context()
    authority.configure_trust(client_context)

    with trio.fail_after(30):
        async with trionet.WebSocketServer.new(
            serve, host="localhost", port=0, ssl_context=server_context
        ) as wss:
            await trio.to_thread.run_sync(client, wss.port, client_context)


if __name__ == "__main__":
    trio.run(main)
