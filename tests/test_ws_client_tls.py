"""wss:// with trionet.WebSocket: certificates it must reject and ones it must accept.

The certificates come from ``trustme``; the servers are websockets' (asyncio and trio) with
TLS on, and raw trio listeners for a TLS peer that never finishes its handshake.
"""

from __future__ import annotations

import ssl
from typing import Any

import pytest
import trio
import trustme

import trionet

from .conftest import open_fds
from .wsclient_servers import (
    HOST,
    TIMEOUT,
    ServerFactory,
    asyncio_server,
    raw_server,
    trio_serve,
    trio_server,
)

needs_trio_server = pytest.mark.skipif(trio_serve is None, reason="no websockets.trio")


@pytest.fixture(params=["asyncio", pytest.param("trio", marks=needs_trio_server)])
def server(request: pytest.FixtureRequest) -> ServerFactory:
    return asyncio_server if request.param == "asyncio" else trio_server


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def server_context(ca: trustme.CA, *names: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*names).configure_cert(context)
    return context


def trusting(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


def connect(address: str, **options: Any) -> Any:
    options.setdefault("ping_interval", None)
    options.setdefault("close_timeout", 2)
    options.setdefault("open_timeout", 5)
    return trionet.WebSocket.new(address, **options)


async def echo(ws: Any) -> None:
    async for message in ws:
        await ws.send(message)


async def all_events(ws: Any) -> list[Any]:
    return [event async for event in ws.events()]


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_trusted_certificate_is_accepted(
    server: ServerFactory, ca: trustme.CA, host: str
) -> None:
    tls = server_context(ca, "127.0.0.1", "localhost")
    with trio.fail_after(TIMEOUT):
        async with (
            server(echo, ssl=tls) as port,
            connect(f"wss://{host}:{port}/secure", ssl_context=trusting(ca)) as ws,
        ):
            assert ws.status == "Connecting"
            assert (await ws.events().receive()).type == "open"
            assert ws.url == f"wss://{host}:{port}/secure"
            await ws.send("over TLS")
            assert (await ws.events().receive()).data == "over TLS"
            await ws.send(b"\x00" * 200_000)
            assert (await ws.events().receive()).data == b"\x00" * 200_000
            await ws.terminate()
            events = await all_events(ws)
    assert [(e.type, e.code) for e in events] == [("terminate", 1000)]


async def test_untrusted_certificate_is_rejected(server: ServerFactory, ca: trustme.CA) -> None:
    tls = server_context(ca, "127.0.0.1", "localhost")
    with trio.fail_after(TIMEOUT):
        async with server(echo, ssl=tls) as port:
            start = trio.current_time()
            async with connect(f"wss://127.0.0.1:{port}/") as ws:  # the system's CAs only
                events = await all_events(ws)
            elapsed = trio.current_time() - start
    assert [e.type for e in events] == ["error", "terminate"]
    record = events[0].errors[0]
    assert record.component_signature == "tls"
    assert "certificate" in record.message
    assert record.http_status is None
    assert ws.status == "Closed"
    assert elapsed < 3


async def test_certificate_for_another_host_is_rejected(
    server: ServerFactory, ca: trustme.CA
) -> None:
    tls = server_context(ca, "other.example")
    with trio.fail_after(TIMEOUT):
        async with (
            server(echo, ssl=tls) as port,
            connect(f"wss://127.0.0.1:{port}/", ssl_context=trusting(ca)) as ws,
        ):
            events = await all_events(ws)
    assert [e.type for e in events] == ["error", "terminate"]
    assert events[0].errors[0].component_signature == "tls"
    assert "127.0.0.1" in events[0].errors[0].message


async def test_wss_to_a_plain_server_fails_with_tls(server: ServerFactory, ca: trustme.CA) -> None:
    with trio.fail_after(TIMEOUT):
        async with (
            server(echo) as port,
            connect(f"wss://127.0.0.1:{port}/", ssl_context=trusting(ca)) as ws,
        ):
            events = await all_events(ws)
    assert [e.type for e in events] == ["error", "terminate"]
    assert events[0].errors[0].component_signature == "tls"


async def test_tls_peer_that_never_answers_times_out_without_leaks(ca: trustme.CA) -> None:
    async def silent(stream: trio.SocketStream) -> None:
        while await stream.receive_some():
            pass

    with trio.fail_after(TIMEOUT):
        async with raw_server(silent) as port:
            before = open_fds()
            start = trio.current_time()
            async with connect(
                f"wss://{HOST}:{port}/", ssl_context=trusting(ca), open_timeout=0.5
            ) as ws:
                events = await all_events(ws)
            elapsed = trio.current_time() - start
            await trio.sleep(0.05)  # the server side sees EOF and closes its end
            leaked = open_fds() - before
    assert [e.type for e in events] == ["error", "terminate"]
    assert "0.5" in events[0].errors[0].message
    assert 0.4 < elapsed < 3
    assert not leaked
