"""The WebSocket opening handshake and plain HTTP on the same port (sans-I/O, no trio).

Bytes go in, requests and response bytes come out.  wsproto does the WebSocket handshake
(``Sec-WebSocket-Accept``, extension negotiation); h11 parses plain HTTP requests for an
``http_handler``.  In front of both, :class:`HeadReader` bounds what a client can make the
server buffer: neither wsproto nor h11 refuses an oversized request with the status a
careful server gives (414 for a request line, 431 for headers).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Sequence
from sys import intern
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import attrs
import wsproto.events as wse
from wsproto.connection import Connection, ConnectionType
from wsproto.extensions import Extension
from wsproto.handshake import H11Handshake, server_extensions_handshake
from wsproto.utilities import RemoteProtocolError, generate_accept_token

from ._wsevents import WebSocketRequest

__all__ = [
    "ClientHandshake",
    "HandshakeLimits",
    "HeadReader",
    "Refusal",
    "ServerHandshake",
    "is_upgrade",
    "parse_request",
]

# RFC 9110: a header name is a token; a value has no control character but tab.
_TOKEN = re.compile(rb"[-!#$%&'*+.^_`|~0-9A-Za-z]+")
_CONTROL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")


class Refusal(Exception):
    """The request cannot be served; answer with ``status`` and close.

    Attributes:
        status: The HTTP status to send.
        reason: Why, in words (sent as the plain-text body and reported in ``errors``).
        headers: Extra response headers (``Sec-WebSocket-Version`` with a 426, say).
    """

    def __init__(self, status: int, reason: str, headers: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(f"{status}: {reason}")
        self.status = status
        self.reason = reason
        self.headers = tuple(headers)


@attrs.frozen(kw_only=True)
class HandshakeLimits:
    """How much of a request the server reads before refusing it.

    The defaults follow common servers: 8 KiB for the request line (nginx's and h11's
    order of magnitude), 100 header lines and 8 KiB per line (Apache's defaults), 64 KiB
    for the whole head, and 1 MiB for a plain request's body.  A browser's handshake is
    well under 2 KiB; anything near these limits is a client error or an attack.

    Attributes:
        max_request_line: Bytes in the request line (``GET /path HTTP/1.1``); past it,
            414.
        max_headers: Header lines; past it, 431.
        max_header_size: Bytes in one header line; past it, 431.
        max_head: Bytes in the whole request head; past it, 431.
        max_body: Bytes in the body of a plain HTTP request for ``http_handler``; past
            it, 413.
    """

    max_request_line: int = 8192
    max_headers: int = 100
    max_header_size: int = 8192
    max_head: int = 65536
    max_body: int = 1024 * 1024


class HeadReader:
    """Collects bytes up to the end of an HTTP request head, within :class:`HandshakeLimits`."""

    __slots__ = ("_buffer", "_limits", "_scanned")

    def __init__(self, limits: HandshakeLimits) -> None:
        self._limits = limits
        self._buffer = bytearray()  # bytes received so far
        self._scanned = 0  # the head's end is not before this offset

    def feed(self, data: bytes) -> tuple[bytes, bytes] | None:
        """Add ``data``; return ``(head, rest)`` once the head is complete, else ``None``.

        Raises:
            Refusal: 414 or 431 when a limit is passed, 400 when the peer closed early.
        """
        buffer = self._buffer
        if not data:
            raise Refusal(400, "the connection closed before the request was complete")
        if not buffer and not data[:1].isupper():
            # Every HTTP method starts with a capital letter; a TLS ClientHello (0x16) or
            # other binary junk is answered at once instead of waiting for the timeout.
            raise Refusal(400, "not an HTTP request")
        buffer += data
        end = buffer.find(b"\r\n\r\n", max(0, self._scanned - 3))
        limits = self._limits
        if end < 0:
            self._scanned = len(buffer)
            first = buffer.find(b"\r\n")
            if first < 0 and len(buffer) > limits.max_request_line:
                raise Refusal(414, f"request line longer than {limits.max_request_line} bytes")
            if len(buffer) > limits.max_head:
                raise Refusal(431, f"request head larger than {limits.max_head} bytes")
            if len(buffer) - buffer.rfind(b"\n") - 1 > limits.max_header_size:
                raise Refusal(431, f"a header line is longer than {limits.max_header_size} bytes")
            return None
        head = bytes(buffer[: end + 4])
        if len(head) > limits.max_head:
            raise Refusal(431, f"request head larger than {limits.max_head} bytes")
        rest = bytes(buffer[end + 4 :])
        buffer.clear()
        return head, rest


def _short_value(value: str) -> str:
    return intern(value) if len(value) <= 16 else value


def _multi(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Names to a value, or to a list of values when a name came several times."""
    found: dict[str, Any] = {}
    for name, value in pairs:
        if name in found:
            previous = found[name]
            if isinstance(previous, list):
                previous.append(value)
            else:
                found[name] = [previous, value]
        else:
            found[name] = value
    return found


def parse_request(
    head: bytes, limits: HandshakeLimits, remote_address: tuple[str, int]
) -> tuple[WebSocketRequest, list[tuple[bytes, bytes]]]:
    """Parse a request head into a :class:`WebSocketRequest` and its raw header list.

    Raises:
        Refusal: 400 for a malformed request line or header, 414/431 for a limit.
    """
    lines = head[:-4].split(b"\r\n")
    request_line = lines[0]
    if len(request_line) > limits.max_request_line:
        raise Refusal(414, f"request line longer than {limits.max_request_line} bytes")
    parts = request_line.split(b" ")
    if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
        raise Refusal(400, "malformed request line")
    method, target = parts[0], parts[1]
    if not method.isalpha() or not target:
        raise Refusal(400, "malformed request line")
    if len(lines) - 1 > limits.max_headers:
        raise Refusal(431, f"more than {limits.max_headers} header lines")
    raw: list[tuple[bytes, bytes]] = []
    for line in lines[1:]:
        if len(line) > limits.max_header_size:
            raise Refusal(431, f"a header line is longer than {limits.max_header_size} bytes")
        name, colon, value = line.partition(b":")
        if not colon or not _TOKEN.fullmatch(name) or _CONTROL.search(value):
            raise Refusal(400, f"malformed header line {line[:40]!r}")
        raw.append((name.lower(), value.strip()))
    try:
        url = target.decode("ascii")
    except UnicodeDecodeError:
        raise Refusal(400, "the request target is not ASCII") from None
    if url[:1] == "/" and url[:2] != "//" and not any(c in url for c in "?%#"):
        path, query = url, _multi(())  # the usual plain path: nothing to split or unquote
    else:
        split = urlsplit(url)
        path, query = unquote(split.path) or "/", _multi(parse_qsl(split.query, True))
    # Header names, and short values such as "websocket" or "13", are the same in most
    # requests: interned, every open connection shares one copy of each (interned
    # strings are freed with their last user, so the peer cannot grow the table).
    headers = _multi(
        (intern(n.decode("latin-1")), _short_value(v.decode("latin-1"))) for n, v in raw
    )
    offered = headers.get("sec-websocket-protocol", "")
    joined = ",".join(offered) if isinstance(offered, list) else offered
    request = WebSocketRequest(
        method=method.decode("ascii"),
        url=url,
        path=path,
        query=query,
        headers=headers,
        remote_address=remote_address,
        subprotocols=tuple(p.strip() for p in joined.split(",") if p.strip()),
    )
    return request, raw


def is_upgrade(request: WebSocketRequest) -> bool:
    """Whether ``request`` asks for a WebSocket upgrade (``Upgrade: websocket``)."""
    upgrade = request.headers.get("upgrade", "")
    values = upgrade if isinstance(upgrade, list) else [upgrade]
    return any(value.strip().lower() == "websocket" for value in values)


def _values(value: str | list[str] | None) -> list[str]:
    """The comma-separated items of a header sent once or several times."""
    if value is None:
        return []
    joined = ",".join(value) if isinstance(value, list) else value
    return [item.strip() for item in joined.split(",") if item.strip()]


class ServerHandshake:
    """The server side of the upgrade (RFC 6455 section 4.2), on wsproto's pieces.

    The request was already parsed and bounded (:func:`parse_request`); parsing it a second
    time with h11, as wsproto's ``H11Handshake`` does, cost more than the rest of a
    handshake.  This checks the upgrade headers itself, and uses wsproto for the accept
    token, the extension negotiation and the frame-level connection.
    """

    __slots__ = ("_key", "_offers")

    def __init__(self, request: WebSocketRequest, head: bytes) -> None:
        """Check that ``request`` (whose raw ``head`` is given) is a valid upgrade.

        Raises:
            Refusal: 400 for a missing or invalid upgrade header (the reason names it),
                426 with ``Sec-WebSocket-Version: 13`` for another protocol version.
        """
        if request.method != "GET":
            raise Refusal(400, "a WebSocket upgrade must use GET")
        if not head.split(b"\r\n", 1)[0].endswith(b" HTTP/1.1"):
            raise Refusal(400, "a WebSocket upgrade needs HTTP/1.1")
        headers = request.headers
        if "upgrade" not in (token.lower() for token in _values(headers.get("connection"))):
            raise Refusal(400, "missing header 'Connection: Upgrade'")
        version = headers.get("sec-websocket-version")
        if version != "13":
            status = 400 if version is None else 426
            raise Refusal(
                status,
                "unsupported Sec-WebSocket-Version; this server speaks version 13"
                if version is not None
                else "missing header 'Sec-WebSocket-Version'",
                [("Sec-WebSocket-Version", "13")],
            )
        key = headers.get("sec-websocket-key")
        try:
            valid = isinstance(key, str) and len(base64.b64decode(key, validate=True)) == 16
        except ValueError:
            valid = False
        if not valid:
            raise Refusal(400, "missing or invalid Sec-WebSocket-Key")
        if not isinstance(headers.get("host"), str):
            raise Refusal(400, "missing header 'Host'")
        assert isinstance(key, str)
        self._key = key.encode("ascii")  # the client's nonce
        self._offers = _values(headers.get("sec-websocket-extensions"))  # offered extensions

    def accept(
        self, subprotocol: str | None, extensions: list[Extension]
    ) -> tuple[bytes, Connection]:
        """The 101 response, and the wsproto connection that frames from then on."""
        lines = [
            "HTTP/1.1 101 Switching Protocols",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Accept: {generate_accept_token(self._key).decode('ascii')}",
        ]
        if subprotocol is not None:
            lines.append(f"Sec-WebSocket-Protocol: {subprotocol}")
        if extensions and self._offers:
            accepted = server_extensions_handshake(self._offers, extensions)
            if accepted:
                lines.append(f"Sec-WebSocket-Extensions: {accepted.decode('ascii')}")
        response = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        return response, Connection(ConnectionType.SERVER, extensions)


class ClientHandshake:
    """The client side of the upgrade (used by the in-memory test client and the client)."""

    __slots__ = ("_h11", "_reader", "request_bytes")

    def __init__(
        self,
        host: str,
        target: str,
        *,
        subprotocols: Sequence[str],
        extensions: list[Extension],
        headers: Sequence[tuple[str, str]],
        limits: HandshakeLimits,
    ) -> None:
        self._h11 = H11Handshake(ConnectionType.CLIENT)
        self._reader = HeadReader(limits)
        request = wse.Request(
            host=host,
            target=target,
            subprotocols=list(subprotocols),
            extensions=extensions,
            extra_headers=[(n.encode("latin-1"), v.encode("latin-1")) for n, v in headers],
        )
        #: The upgrade request to send.
        self.request_bytes = self._h11.send(request)

    def feed(self, data: bytes) -> tuple[Connection, str | None, bytes] | None:
        """Add response bytes; once complete return ``(connection, subprotocol, rest)``.

        Raises:
            Refusal: the server refused (its status) or answered nonsense (status 0).
        """
        done = self._reader.feed(data)
        if done is None:
            return None
        head, rest = done
        status_line = head.split(b"\r\n", 1)[0]
        parts = status_line.split(b" ", 2)
        status = int(parts[1]) if len(parts) >= 2 and parts[1].isdigit() else 0
        if status != 101:
            raise Refusal(status, f"the server answered {status_line.decode('latin-1')!r}")
        try:
            self._h11.receive_data(head)
            events = list(self._h11.events())
        except RemoteProtocolError as exc:
            raise Refusal(0, f"invalid upgrade response: {exc}") from None
        accepted = events[0] if events else None
        if not isinstance(accepted, wse.AcceptConnection) or self._h11.connection is None:
            raise Refusal(0, "invalid upgrade response")
        return self._h11.connection, accepted.subprotocol, rest
