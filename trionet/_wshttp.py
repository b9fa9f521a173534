"""Plain HTTP on a WebSocket port: reading a request's body and writing a response.

Sans-I/O like the handshake module: h11 parses the request (its head was already read and
bounded by :class:`~trionet._wshandshake.HeadReader`); responses always end the
connection (``Connection: close``), one request per connection.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import h11

from ._wshandshake import HandshakeLimits, Refusal

__all__ = ["PlainRequestReader", "http_response", "json_text"]

_REASONS = {
    101: "Switching Protocols",
    200: "OK",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    408: "Request Timeout",
    413: "Content Too Large",
    414: "URI Too Long",
    426: "Upgrade Required",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def http_response(
    status: int, headers: Sequence[tuple[str, str]] = (), body: bytes | str = b""
) -> bytes:
    """A complete HTTP/1.1 response that ends the connection (``Connection: close``).

    Raises:
        ValueError: a header name or value contains a line break (response splitting).
    """
    if isinstance(body, str):
        body = body.encode("utf-8")
    out = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}"]
    names = set()
    for name, value in headers:
        if any(c in name or c in value for c in "\r\n\0") or ":" in name or not name:
            raise ValueError(f"invalid response header {name!r}")
        names.add(name.lower())
        out.append(f"{name}: {value}")
    if "content-type" not in names and body:
        out.append("Content-Type: text/plain; charset=utf-8")
    out.append(f"Content-Length: {len(body)}")
    out.append("Connection: close")
    return ("\r\n".join(out) + "\r\n\r\n").encode("latin-1") + body


class PlainRequestReader:
    """Reads a plain HTTP request's body with h11, for ``http_handler``."""

    __slots__ = ("_body", "_h11", "_limits")

    def __init__(self, head: bytes, limits: HandshakeLimits) -> None:
        self._h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=limits.max_head)
        self._limits = limits
        self._body = bytearray()  # the body so far
        self._h11.receive_data(head)

    def feed(self, data: bytes) -> bytes | None:
        """Add body bytes (``b""`` at EOF); return the body once it is complete.

        Raises:
            Refusal: 400 for a malformed or cut-short request, 413 for a body over the
                limit.
        """
        self._h11.receive_data(data)  # b"" tells h11 the peer closed
        while True:
            try:
                event = self._h11.next_event()
            except h11.RemoteProtocolError as exc:
                raise Refusal(400, f"malformed request: {exc}") from None
            if event is h11.NEED_DATA:
                return None
            if isinstance(event, h11.Data):
                self._body += event.data
                if len(self._body) > self._limits.max_body:
                    raise Refusal(413, f"request body larger than {self._limits.max_body} bytes")
            elif isinstance(event, h11.EndOfMessage) or event is h11.PAUSED:
                return bytes(self._body)
            elif isinstance(event, h11.ConnectionClosed):
                raise Refusal(400, "the connection closed before the request was complete")


def json_text(value: object) -> str:
    """``value`` as compact JSON text (what ``send(dict | list)`` puts in a text frame).

    Raises:
        TypeError: ``value`` holds something JSON cannot represent.
    """
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
