"""Immutable WebSocket event and request values (no I/O, no trio).

Server-level events (``connection``, ``open``, ``terminate``, ``error``) and
connection-level events (``open``, ``message``, ``terminate``, ``error``) share one class,
:class:`WebSocketEvent`, as 4D's do; :class:`WebSocketRequest` is the handshake request
that ``on_connection`` and ``http_handler`` see.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import attrs

from ._events import ErrorRecord

__all__ = ["CloseCode", "WebSocketEvent", "WebSocketEventType", "WebSocketRequest"]


class WebSocketEventType(str, enum.Enum):
    """The kinds of :class:`WebSocketEvent`; a ``str`` enum, so ``event.type == "message"``."""

    __hash__ = object.__hash__  # identity hash: a C-level lookup on the per-message path

    CONNECTION = "connection"
    OPEN = "open"
    MESSAGE = "message"
    ERROR = "error"
    TERMINATE = "terminate"

    def __str__(self) -> str:
        return self.value


class CloseCode(enum.IntEnum):
    """Close codes of RFC 6455 section 7.4.1 that trionet sends or reports."""

    NORMAL = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    #: Reported, never sent: the peer's close frame carried no code.
    NO_STATUS = 1005
    #: Reported, never sent: the connection ended without a close frame.
    ABNORMAL = 1006
    INVALID_DATA = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    MANDATORY_EXTENSION = 1010
    INTERNAL_ERROR = 1011
    TRY_AGAIN_LATER = 1013


def _short(data: object) -> str:
    if isinstance(data, (bytes, str)) and len(data) > 32:
        return f"<{type(data).__name__} of {len(data)}: {data[:24]!r}...>"
    return repr(data)


# Most requests have no query: they all share this one (a mapping less per connection).
_EMPTY: Mapping[str, Any] = MappingProxyType({})


def _readonly(value: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(value)) if value else _EMPTY


@attrs.frozen(kw_only=True)
class WebSocketRequest:
    """The HTTP request that opened (or tried to open) a WebSocket connection.

    Attributes:
        method: The HTTP method (``"GET"`` for every WebSocket upgrade).
        url: Path and query exactly as sent (``"/chat?room=1"``).
        path: The path part of :attr:`url` (``"/chat"``), percent-decoded.
        query: The parsed query: each name maps to a ``str``, or to a ``list`` of
            ``str`` when it was given several times.
        headers: Header names lower-cased; each maps to a ``str``, or to a ``list`` of
            values when the header was sent several times.
        remote_address: The peer's ``(ip, port)``.
        subprotocols: The subprotocols the client offered, in its order.
        body: The request body (plain HTTP requests given to ``http_handler``; empty
            for upgrades).
    """

    method: str
    url: str
    path: str
    query: Mapping[str, Any] = attrs.field(converter=_readonly, factory=dict, eq=False)
    headers: Mapping[str, Any] = attrs.field(converter=_readonly, factory=dict, eq=False)
    remote_address: tuple[str, int] = ("", 0)
    subprotocols: tuple[str, ...] = ()
    body: bytes = attrs.field(default=b"", repr=_short)

    @property
    def remoteAddress(self) -> tuple[str, int]:
        """4D spelling of :attr:`remote_address`."""
        return self.remote_address


@attrs.frozen(kw_only=True)
class WebSocketEvent:
    """Something that happened on a WebSocket server or connection.

    Attributes:
        type: One of :class:`WebSocketEventType`; compares equal to its string value.
        data: For ``message`` events, the message: ``str`` (text), ``bytes`` (binary, or
            every message with ``data_type="blob"``) or the parsed JSON value
            (``data_type="object"``).  ``None`` otherwise.
        code: For ``terminate`` events of a connection, the close code (1005: the peer
            sent a close frame without one; 1006: the connection ended without a close
            frame).  ``None`` otherwise.
        reason: For ``terminate`` events of a connection, the close reason (may be empty).
        request: For the server's ``connection`` events, the handshake request.
        errors: For ``error`` events, the records that describe the failure.
    """

    type: WebSocketEventType
    data: Any = attrs.field(default=None, repr=_short)
    code: int | None = None
    reason: str = ""
    request: WebSocketRequest | None = None
    errors: tuple[ErrorRecord, ...] = ()


_new = object.__new__
_set = object.__setattr__
_MESSAGE = WebSocketEventType.MESSAGE


def message_event(data: object) -> WebSocketEvent:
    """Build a ``message`` event without attrs' keyword parsing (one per message).

    Equivalent to ``WebSocketEvent(type="message", data=data)``; every field is set here,
    before anyone sees the object, which keeps it frozen.
    """
    event = _new(WebSocketEvent)
    _set(event, "type", _MESSAGE)
    _set(event, "data", data)
    _set(event, "code", None)
    _set(event, "reason", "")
    _set(event, "request", None)
    _set(event, "errors", ())
    return event
