"""A WebSocket server's side of opening a connection: TLS, the request, the answer.

The body of :class:`~trionet.WebSocketServer`'s per-connection work up to the 101 (or the
refusal, or the plain HTTP answer), kept apart from the server class.  Everything here
happens within the open timeout; what the client sent wrong is answered with its HTTP
status and reported to the server's ``on_error``.
"""

from __future__ import annotations

import inspect
import logging
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs
import trio

from . import _endpoints
from ._events import ErrorCode, ErrorRecord
from ._handlers import WEBSOCKET_CALLBACKS, HandlerFailure, resolve_callbacks
from ._sockets import adopt, open_transport
from ._transport import Transport, TransportError
from ._wsevents import WebSocketEventType, WebSocketRequest
from ._wshandshake import (
    HeadReader,
    Refusal,
    ServerHandshake,
    is_upgrade,
    parse_request,
)
from ._wshttp import PlainRequestReader, http_response
from ._wsproto import BoundedDeflate, FrameLayer

if TYPE_CHECKING:
    from ._wsserver import WebSocketServer

__all__ = ["Accepted", "open_connection"]

log = logging.getLogger("trionet.websocket")

_T = WebSocketEventType
Callbacks = dict[Any, tuple[str, Callable[[Any, Any], Any]]]
# Refusals that are the client's fault, reported to on_error (403 and 503 are our choice).
_REPORTED = frozenset({400, 404, 413, 414, 426, 431})
_UPGRADE_ONLY = (("Upgrade", "websocket"), ("Sec-WebSocket-Version", "13"))


@attrs.frozen
class Accepted:
    """A completed upgrade, ready to become a :class:`WebSocketConnection`."""

    handler: object | None
    callbacks: Callbacks | None  # the handler's, resolved once while checking it
    request: WebSocketRequest
    frames: FrameLayer
    subprotocol: str | None
    trailing: bytes


async def open_connection(
    server: WebSocketServer, source: trio.abc.Stream | socket.socket, remote: tuple[str, int]
) -> tuple[Accepted | None, Transport | None]:
    """TLS and the opening handshake, within the open timeout.

    ``source`` is the accepted connection: a socket straight from the listening socket,
    or a trio stream (TLS and listeners that are not sockets).
    """
    transport: Transport | None = None
    accepted: Accepted | None = None
    scope = trio.CancelScope(deadline=trio.current_time() + server._options.open_timeout)
    server._handshakes.add(scope)
    try:
        with scope:
            if isinstance(source, socket.socket):
                transport = adopt(source, no_delay=server._no_delay)
            else:
                if server._ssl_context is not None:
                    source = await _endpoints.start_tls(
                        source, server._ssl_context, server_side=True
                    )
                transport = open_transport(source)
                transport.set_no_delay(server._no_delay)
            accepted = await _upgrade(server, transport, remote)
        if scope.cancelled_caught and transport is not None and server._terminated:
            with trio.move_on_after(server._options.close_timeout):
                await transport.send(http_response(503, body="the server is shutting down"))
        elif scope.cancelled_caught:
            log.debug("handshake from %s:%s timed out", *remote)
    except TransportError as exc:
        log.debug("handshake with %s:%s failed: %s", remote[0], remote[1], exc)
    finally:
        server._handshakes.discard(scope)
        if accepted is None:
            with trio.CancelScope(shield=True):
                if transport is not None:
                    await transport.aclose()
                elif isinstance(source, socket.socket):
                    source.close()
                else:
                    await trio.aclose_forcefully(source)
    return accepted, transport


async def _upgrade(
    server: WebSocketServer, transport: Transport, remote: tuple[str, int]
) -> Accepted | None:
    """Read the request and answer it: the upgrade, plain HTTP, or a refusal."""
    limits = server._options.limits
    reader = HeadReader(limits)
    try:
        done = None
        # A new connection's request has usually arrived by the time its task runs: it
        # is read without the pass of the scheduler a receive would end with.
        chunk = transport.receive_nowait()
        while done is None:
            done = reader.feed(await transport.receive() if chunk is None else chunk)
            chunk = None
        head, rest = done
        request, _raw = parse_request(head, limits, remote)
        if not is_upgrade(request):
            await _serve_http(server, transport, head, rest, request)
            return None
        if server._path is not None and request.path != server._path:
            raise Refusal(404, f"no WebSocket endpoint at {request.path}")
        if server._terminated:
            raise Refusal(503, "the server is shutting down")
        handshake = ServerHandshake(request, head)
        handler, callbacks = await _choose_handler(server, request)
        subprotocol = _choose_subprotocol(server, request)
        extensions: list[Any] = []
        if server._options.compression:
            extensions.append(BoundedDeflate(server._options.max_message_size))
        response, connection = handshake.accept(subprotocol, extensions)
    except Refusal as refusal:
        await _refuse(server, transport, refusal, remote)
        return None
    await transport.send_eager(response)  # the first read, next, yields
    frames = FrameLayer(
        connection,
        data_type=server._options.data_type,
        max_message_size=server._options.max_message_size,
        max_fragments=server._options.max_fragments,
    )
    return Accepted(handler, callbacks, request, frames, subprotocol, rest)


async def _refuse(
    server: WebSocketServer, transport: Transport, refusal: Refusal, remote: tuple[str, int]
) -> None:
    """Answer with the refusal's status, report it if it was the client's fault, close."""
    if refusal.status in _REPORTED:
        await server._report(
            ErrorRecord(
                err_code=ErrorCode.HANDSHAKE_FAILED,
                message=f"request from {remote[0]}:{remote[1]} refused with "
                f"{refusal.status}: {refusal.reason}",
                component_signature="websocket",
            )
        )
    log.debug("refused %s:%s with %s", remote[0], remote[1], refusal)
    await transport.send(http_response(refusal.status, refusal.headers, refusal.reason + "\n"))
    await transport.close_orderly()


async def _choose_handler(
    server: WebSocketServer, request: WebSocketRequest
) -> tuple[object | None, Callbacks | None]:
    """``on_connection``'s answer: a connection handler and its callbacks, or a refusal.

    Raises:
        Refusal: 403 when ``on_connection`` returned ``None``, 500 when it raised or
            returned something without ``on_message``.
    """
    if server._serve is not None:
        return None, None
    handler: object = None
    try:
        handler = await server._notify(_T.CONNECTION, request=request)
        callbacks = None
        if handler is not None:
            callbacks = resolve_callbacks(
                handler, WEBSOCKET_CALLBACKS, argument="on_connection's result"
            )
            if _T.MESSAGE not in callbacks:
                raise TypeError("on_connection's result must have an on_message callback")
    except (HandlerFailure, TypeError) as failure:
        cause = failure.__cause__ if isinstance(failure, HandlerFailure) else failure
        log.error("%s: %s", server, failure, exc_info=cause)
        await server._report(
            ErrorRecord(
                err_code=ErrorCode.HANDLER_RAISED,
                message=f"connection from {request.remote_address[0]} refused: {failure}",
                component_signature="handler",
            )
        )
        raise Refusal(500, "the server failed to handle the connection") from None
    if handler is None:
        raise Refusal(403, "connection refused by the server")
    return handler, callbacks


def _choose_subprotocol(server: WebSocketServer, request: WebSocketRequest) -> str | None:
    offered = request.subprotocols
    choice = server._subprotocols
    if callable(choice):
        picked = choice(request)
        if picked is not None and picked not in offered:
            log.error("%s: subprotocol chooser picked %r, not offered", server, picked)
            raise Refusal(500, "the server chose a subprotocol the client did not offer")
        return picked
    for name in choice:
        if name in offered:
            return name
    return None


async def _serve_http(
    server: WebSocketServer,
    transport: Transport,
    head: bytes,
    rest: bytes,
    request: WebSocketRequest,
) -> None:
    """A plain HTTP request: ``http_handler`` answers it, or 426."""
    if server._http_handler is None:
        raise Refusal(426, "this endpoint speaks WebSocket only", _UPGRADE_ONLY)
    reader = PlainRequestReader(head, server._options.limits)
    body = reader.feed(rest)
    while body is None:
        body = reader.feed(await transport.receive())
    request = attrs.evolve(request, body=body)
    try:
        answer = server._http_handler(request)
        if inspect.isawaitable(answer):
            answer = await answer
        status, headers, content = answer
        if isinstance(headers, dict):
            headers = list(headers.items())
        response = http_response(int(status), list(headers), content)
    except Exception as exc:
        log.error("%s: http_handler raised %r", server, exc, exc_info=exc)
        await server._report(
            ErrorRecord(
                err_code=ErrorCode.HANDLER_RAISED,
                message=f"http_handler failed for {request.method} {request.url}: {exc!r}",
                component_signature="handler",
            )
        )
        response = http_response(500, body="internal server error\n")
    await transport.send(response)
    await transport.close_orderly()
