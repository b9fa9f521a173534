"""4D's ``WebSocket`` client class on trio: ``ws://`` and ``wss://`` URLs."""

from __future__ import annotations

import ssl
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, cast
from urllib.parse import urlsplit

import trio

from . import _endpoints
from ._sockets import open_transport
from ._transport import StreamTransport, Transport
from ._util import url_host
from ._wsclient import client_handshake, client_lifetime
from ._wsconnection import WebSocketConnection
from ._wsoptions import WebSocketOptions
from ._wsproto import FrameLayer

__all__ = ["WebSocket", "parse_ws_url"]


def parse_ws_url(url: object) -> tuple[bool, str, int, str]:
    """Split a WebSocket URL into ``(secure, host, port, target)``.

    Raises:
        TypeError: ``url`` is not a ``str``.
        ValueError: the scheme is not ``ws``/``wss``, the host is missing, or the port is
            not a number in 1..65535.
    """
    if not isinstance(url, str):
        raise TypeError(f"url must be a str, not {type(url).__name__}")
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss"):
        raise ValueError(f"url must start with ws:// or wss://, got {url!r}")
    if not parts.hostname:
        raise ValueError(f"url has no host: {url!r}")
    try:
        port = parts.port or (443 if parts.scheme == "wss" else 80)
    except ValueError:
        raise ValueError(f"url has an invalid port: {url!r}") from None
    if not 1 <= port <= 65535:
        raise ValueError(f"url has an invalid port: {url!r}")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if any(ord(c) <= 0x20 or ord(c) >= 0x7F for c in target):
        raise ValueError(
            f"url's path and query must be ASCII without spaces or control characters "
            f"(percent-encode them): {url!r}"
        )
    return parts.scheme == "wss", parts.hostname, port, target


class WebSocket(WebSocketConnection):
    """A WebSocket client connection (4D ``WebSocket``).

    It is a :class:`WebSocketConnection` like the server's (same lifecycle, events, limits
    and closing handshake); it adds :meth:`new`, which connects to a URL.  ``status`` is
    ``"Connecting"`` until the upgrade is done.
    """

    __slots__ = ()

    @classmethod
    def new(
        cls,
        url: str,
        handler: object | None = None,
        *,
        data_type: str = "text",
        headers: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
        subprotocols: Sequence[str] = (),
        ssl_context: ssl.SSLContext | None = None,
        **limits: Any,
    ) -> AbstractAsyncContextManager[WebSocketConnection]:
        """Connect to ``url`` for the duration of an ``async with`` block.

        Entering the block does not wait: the first event is ``open``, or ``error`` (then
        ``terminate``) if the connection or the upgrade failed; an upgrade the server
        refused has the HTTP status in ``errors[0].http_status``.

        Args:
            url: ``ws://host[:port]/path?query`` or ``wss://...``.
            handler: A connection handler (``on_open``, ``on_message``, ``on_error``,
                ``on_terminate``; snake_case or camelCase, sync or async), or ``None`` to
                read :meth:`~WebSocketConnection.events`.
            data_type: ``"text"``, ``"blob"`` or ``"object"``, as on the server.
            headers: Extra request headers (``Authorization``, ``Origin``, ...).
            subprotocols: Subprotocols to offer; the chosen one is :attr:`protocol`.
            ssl_context: For ``wss://``: the TLS settings; by default the system's
                trusted certificates, with the host name checked.
            **limits: As for :meth:`~trionet.WebSocketServer.new` (``open_timeout``
                bounds DNS, TCP, TLS and the upgrade together).

        Returns:
            An async context manager yielding the connection.

        Raises:
            TypeError: an argument has the wrong type (the message names it).
            ValueError: ``url`` is not a WebSocket URL, or a limit is out of range.
        """
        secure, host, port, target = parse_ws_url(url)
        pairs = _header_pairs(headers)
        if isinstance(subprotocols, str) or not all(isinstance(p, str) for p in subprotocols):
            raise TypeError("subprotocols must be a sequence of str")
        if ssl_context is not None and not isinstance(ssl_context, ssl.SSLContext):
            raise TypeError(
                f"ssl_context must be an ssl.SSLContext, not {type(ssl_context).__name__}"
            )
        options = WebSocketOptions.make(data_type=data_type, **limits)
        context = ssl_context
        if secure and context is None:
            context = ssl.create_default_context()
        default_port = 443 if secure else 80
        host_header = url_host(host) if port == default_port else f"{url_host(host)}:{port}"

        async def opener() -> tuple[Transport, FrameLayer, str | None, bytes]:
            stream, _ip, _port = await _endpoints.connect(
                host, port, timeout=options.open_timeout, no_delay=True
            )
            transport: Transport
            if context is not None:
                try:
                    tls = await _endpoints.start_tls(stream, context, server_hostname=host)
                except BaseException:
                    # start_tls closes the stream when the handshake fails, but not when
                    # the open timeout (or any cancellation) interrupts it.
                    await trio.aclose_forcefully(stream)
                    raise
                transport = StreamTransport(tls)
            else:
                transport = open_transport(stream)
            try:
                return await client_handshake(
                    transport,
                    host=host_header,
                    target=target,
                    options=options,
                    subprotocols=subprotocols,
                    headers=pairs,
                )
            except BaseException:
                await transport.aclose()
                raise

        return client_lifetime(opener, handler=handler, options=options, url=url, cls=cls)


def _header_pairs(headers: object) -> list[tuple[str, str]]:
    if headers is None:
        return []
    items: Iterable[Any] = (
        headers.items() if isinstance(headers, Mapping) else cast("Iterable[Any]", headers)
    )
    pairs = []
    try:
        for name, value in items:
            if not isinstance(name, str) or not isinstance(value, str):
                raise TypeError
            pairs.append((name, value))
    except (TypeError, ValueError):
        raise TypeError("headers must be a mapping or a sequence of (str, str) pairs") from None
    return pairs
