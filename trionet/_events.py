"""Immutable event and error values (no I/O, no trio).

Events are frozen ``attrs`` classes with slots: they can be shared between tasks and kept
after the connection is gone.  Payloads are ``bytes`` and collections are tuples, so an event
is frozen all the way down.
"""

from __future__ import annotations

import enum

import attrs

__all__ = ["ErrorCode", "ErrorRecord", "TCPEvent", "TCPEventType"]


class TCPEventType(str, enum.Enum):
    """The kinds of :class:`TCPEvent`; a ``str`` enum, so ``event.type == "data"`` holds."""

    CONNECTION = "connection"
    DATA = "data"
    ERROR = "error"
    CLOSE = "close"
    TERMINATE = "terminate"

    def __str__(self) -> str:
        return self.value


class ErrorCode(enum.IntEnum):
    """Codes for failures that have no operating-system ``errno``.

    Errors that come from the operating system keep their ``errno`` as ``err_code`` (for
    example 111, ``ECONNREFUSED`` on Linux).  The codes below are negative, so the two ranges
    never collide.
    """

    #: The host name could not be resolved.
    RESOLVE_FAILED = -1
    #: The connection attempt took longer than ``connection_timeout``.
    CONNECT_TIMEOUT = -2
    #: A user callback (or ``serve`` function) raised an exception.
    HANDLER_RAISED = -3
    #: The orderly close did not finish within ``close_timeout``; the socket was closed hard.
    CLOSE_TIMEOUT = -4
    #: The connection was terminated before its connect attempt finished.
    CONNECT_ABORTED = -5
    #: The peer reset the connection or the stream broke.
    CONNECTION_BROKEN = -6
    #: A listener failed to accept a connection.
    ACCEPT_FAILED = -7
    #: A send could not complete within ``send_timeout``: the peer does not read.
    SEND_TIMEOUT = -8
    #: The WebSocket opening handshake failed or was refused (the message says how).
    HANDSHAKE_FAILED = -9
    #: The peer broke the WebSocket protocol or a limit; the message has the close code.
    PROTOCOL_ERROR = -10
    #: The peer did not answer a keepalive ping within ``ping_timeout``.
    KEEPALIVE_TIMEOUT = -11
    #: The connection ended without a closing handshake (no close frame: code 1006).
    CLOSED_ABNORMALLY = -12
    #: A client fell too far behind ``broadcast()`` and was closed with 1008.
    SLOW_CONSUMER = -13
    #: The TLS handshake failed (for a client, often: the certificate did not verify).
    TLS_FAILED = -14


@attrs.frozen(kw_only=True)
class ErrorRecord:
    """One entry of an ``errors`` list, shaped like 4D's error stack items.

    Attributes:
        err_code: ``errno`` for operating-system errors, otherwise an :class:`ErrorCode`.
        message: What happened, in words; names the host, callback or limit involved.
        component_signature: Which part of trionet reported it: ``"os"``, ``"dns"``,
            ``"tcp"``, ``"tls"``, ``"websocket"`` or ``"handler"``.
        http_status: For a refused WebSocket upgrade, the HTTP status the server
            answered (403, 404, ...); ``None`` otherwise.
    """

    err_code: int
    message: str
    component_signature: str
    http_status: int | None = None

    @property
    def errCode(self) -> int:
        """4D spelling of :attr:`err_code`."""
        return self.err_code

    @property
    def componentSignature(self) -> str:
        """4D spelling of :attr:`component_signature`."""
        return self.component_signature


def _short_repr(data: bytes | None) -> str:
    if data is None:
        return "None"
    if len(data) <= 32:
        return repr(data)
    return f"<{len(data)} bytes: {data[:24]!r}...>"


@attrs.frozen(kw_only=True)
class TCPEvent:
    """Something that happened on a TCP connection or listener (4D ``TCPEvent``).

    Attributes:
        type: One of :class:`TCPEventType`; compares equal to its string value.
        data: The received bytes for ``"data"`` events, ``None`` for every other type.  TCP
            keeps order but not boundaries: one ``send`` may arrive as several ``data`` events
            and several sends as one.
        ip: The remote peer's IP address (or the host name given, if it never resolved).
        port: The remote peer's port.
        errors: For ``"error"`` events, the records that describe this failure; empty
            otherwise.
    """

    type: TCPEventType
    data: bytes | None = attrs.field(default=None, repr=_short_repr)
    ip: str = ""
    port: int = 0
    errors: tuple[ErrorRecord, ...] = ()


_new = object.__new__
_set = object.__setattr__
_DATA = TCPEventType.DATA


def data_event(data: bytes, ip: str, port: int) -> TCPEvent:
    """Build a ``data`` event without attrs' keyword parsing (one per received chunk).

    Equivalent to ``TCPEvent(type="data", data=data, ip=ip, port=port)``, in half the time;
    the fields are set once here, before anyone sees the object, which keeps it frozen.
    """
    event = _new(TCPEvent)
    _set(event, "type", _DATA)
    _set(event, "data", data)
    _set(event, "ip", ip)
    _set(event, "port", port)
    _set(event, "errors", ())
    return event
