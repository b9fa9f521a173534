"""The client side of a WebSocket connection: the upgrade and the connection's lifetime.

Whatever carries the bytes (a TCP or TLS connection, the memory streams of
:mod:`trionet.testing`), a client connection is the same :class:`WebSocketConnection` as
a server's, opened by :func:`client_handshake` inside its own network task and owned by
the nursery of :func:`client_lifetime`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager

import trio

from ._events import ErrorCode, ErrorRecord
from ._transport import Transport, TransportError
from ._util import unwrap_body_error
from ._wsbackground import run_keepalive
from ._wsconnection import WebSocketConnection
from ._wshandshake import ClientHandshake, Refusal
from ._wsoptions import WebSocketOptions
from ._wsproto import BoundedDeflate, FrameLayer

__all__ = ["client_handshake", "client_lifetime"]


def _failed(message: str, status: int | None = None) -> TransportError:
    return TransportError(
        ErrorRecord(
            err_code=ErrorCode.HANDSHAKE_FAILED,
            message=message,
            component_signature="websocket",
            http_status=status,
        )
    )


async def client_handshake(
    transport: Transport,
    *,
    host: str,
    target: str,
    options: WebSocketOptions,
    subprotocols: Sequence[str] = (),
    headers: Sequence[tuple[str, str]] = (),
) -> tuple[Transport, FrameLayer, str | None, bytes]:
    """Send the upgrade request on ``transport`` and read the server's answer.

    Returns:
        The transport, the frame layer, the subprotocol the server chose, and the bytes
        that arrived after the response head.

    Raises:
        TransportError: the server refused (the message has the HTTP status), answered
            something that is not a WebSocket upgrade, or closed the connection.
    """
    extensions = [BoundedDeflate(options.max_message_size)] if options.compression else []
    handshake = ClientHandshake(
        host,
        target,
        subprotocols=subprotocols,
        extensions=list(extensions),
        headers=headers,
        limits=options.limits,
    )
    await transport.send(handshake.request_bytes)
    while True:
        data = await transport.receive()
        if not data:
            raise _failed(f"the server closed the connection during the upgrade of {target}")
        try:
            done = handshake.feed(data)
        except Refusal as refusal:
            if refusal.status:
                message = f"upgrade refused with HTTP {refusal.status}: {refusal.reason}"
                raise _failed(message, refusal.status) from None
            raise _failed(refusal.reason) from None
        if done is not None:
            connection, subprotocol, rest = done
            frames = FrameLayer(
                connection,
                data_type=options.data_type,
                max_message_size=options.max_message_size,
                max_fragments=options.max_fragments,
            )
            return transport, frames, subprotocol, rest


@asynccontextmanager
async def client_lifetime(
    opener: Callable[[], Awaitable[tuple[Transport, FrameLayer, str | None, bytes]]],
    *,
    handler: object | None,
    options: WebSocketOptions,
    url: str,
    cls: type[WebSocketConnection] = WebSocketConnection,
) -> AsyncIterator[WebSocketConnection]:
    """Run a client connection (and its keepalive) for the span of an ``async with`` block.

    Entering the block does not wait for the upgrade: the first event (``open``, or
    ``error`` if the connect or the upgrade failed) says how it went.
    """
    async with unwrap_body_error(), trio.open_nursery() as nursery:
        conn = cls(
            handler=handler, options=options, spawn=nursery.start_soon, opener=opener, url=url
        )
        await nursery.start(conn._run)
        keepalive = trio.CancelScope()
        if options.keepalive:

            async def pinging() -> None:
                with keepalive:
                    await run_keepalive(
                        lambda: (conn,), options.ping_interval, options.ping_timeout
                    )

            nursery.start_soon(pinging)
        try:
            yield conn
        finally:
            if conn._events is not None:
                conn._events.close()
            conn._request_close()
            keepalive.cancel()
