"""wss://: the server with ``ssl_context``, and TLS failures that end only their connection."""

from __future__ import annotations

import ssl

import pytest
import trio
import trustme

from .test_ws_interop import in_thread, sync_client
from .wshelpers import HOST, TIMEOUT, read_response, serve, upgrade_request


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def server_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(HOST).configure_cert(context)
    return context


def client_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


def echo_once(address: str, context: ssl.SSLContext) -> str:
    with sync_client(address, ssl=context) as ws:
        ws.send("over tls")
        return ws.recv(timeout=5)


async def test_wss_echo_and_failed_tls_handshakes_leave_it_serving(ca: trustme.CA) -> None:
    good = client_context(ca)
    untrusted = client_context(trustme.CA())
    with trio.fail_after(TIMEOUT):
        async with serve(ssl_context=server_context(ca), open_timeout=2) as wss:
            address = f"wss://{HOST}:{wss.port}/"
            assert await in_thread(lambda: echo_once(address, good)) == "over tls"
            # A client that does not trust our certificate fails its handshake...
            with pytest.raises(ssl.SSLError):
                await in_thread(lambda: echo_once(address, untrusted))
            # ... and so does one speaking plain HTTP to the TLS port.
            async with await trio.open_tcp_stream(HOST, wss.port) as stream:
                await stream.send_all(upgrade_request())
                with trio.move_on_after(3) as scope:
                    while await stream.receive_some():
                        pass
                assert not scope.cancelled_caught, "a plain client on the TLS port is not dropped"
            assert wss.connections == []
            assert await in_thread(lambda: echo_once(address, good)) == "over tls"


async def test_wss_refusals_are_http_over_tls(ca: trustme.CA) -> None:
    with trio.fail_after(TIMEOUT):
        async with serve(ssl_context=server_context(ca), path="/ws") as wss:
            tcp = await trio.open_tcp_stream(HOST, wss.port)
            stream = trio.SSLStream(tcp, client_context(ca), server_hostname=HOST)
            async with stream:
                await stream.send_all(upgrade_request("/nope"))
                status, _, body = await read_response(stream)
            assert status == 404
            assert b"/nope" in body
