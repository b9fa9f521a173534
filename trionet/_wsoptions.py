"""WebSocket limits and timeouts, checked once, and the memory budget they imply (no trio)."""

from __future__ import annotations

import math
from collections.abc import Mapping

import attrs

from ._util import check_bool, check_timeout
from ._wshandshake import HandshakeLimits
from ._wsproto import fragment_limit

__all__ = ["DATA_TYPES", "WebSocketOptions"]

#: The ``data_type`` values and what a received message becomes.
DATA_TYPES = ("text", "blob", "object")

# Why the defaults are what they are.
#
# max_message_size, 1 MiB: SPEC's default, and websockets' too; a chat or game message is a
# few KiB, and every queued message may be this large, so it multiplies into the memory budget.
# max_queue, 16 messages: enough for the network task to run ahead of a consumer that answers
# each message, few enough that a stalled consumer pins little (see memory_budget).
# read_ahead, 64 KiB: once the queue is full the connection still queues this many bytes of
# messages (and at most max_queue more messages) so that it answers pings and sees a close
# frame from a peer whose application is merely slow; then TCP flow control takes over.
# open_timeout, close_timeout, 10 s; ping 20 s / 20 s: SPEC's defaults (and websockets').
# send_timeout, 60 s: a send that the peer does not let through for a minute means a client
# that stopped reading; the connection then ends (code 1008) instead of holding its buffers.
# broadcast_backlog, 64 messages: how far a client may fall behind broadcast() before it is
# closed with 1008 (a chat that broadcasts a message a second gives it a minute).
DEFAULT_MAX_MESSAGE_SIZE = 1024 * 1024
DEFAULT_MAX_QUEUE = 16
DEFAULT_READ_AHEAD = 64 * 1024

# zlib's documented memory use: inflate 1 << windowBits plus ~7 KiB of state; deflate
# (1 << (windowBits + 2)) + (1 << (memLevel + 9)) with memLevel 8.
_INFLATE_MEMORY = (1 << 15) + 7 * 1024
_DEFLATE_MEMORY = (1 << 17) + (1 << 17)
# The most one receive() takes from the kernel on a WebSocket connection
# (trionet._transport.LARGE_RECEIVE_SIZE).
_RECEIVE_CHUNK = 262144


def _positive_int(value: object, argument: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{argument} must be an int, not {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"{argument} must be positive, got {value}")
    return value


@attrs.frozen(kw_only=True)
class WebSocketOptions:
    """Every limit and timeout of a WebSocket connection (server or client side).

    Build it with :meth:`make`, which checks each value and names the argument in its
    error.  Times are seconds; ``math.inf`` means no limit.  The keywords of
    :meth:`WebSocketServer.new() <trionet.WebSocketServer.new>` end up here; see
    :doc:`/explanation/websocket-limits` for why each default is what it is.

    Attributes:
        data_type: ``"text"``, ``"blob"`` or ``"object"``: how messages are presented.
        max_message_size: The largest message accepted, in bytes after decompression
            (1 MiB); a larger one ends the connection with 1009.
        max_fragments: The most frames one message may span (derived from
            ``max_message_size``).
        max_queue: Events waiting in ``events()`` before reading stops (16).
        read_ahead: Bytes still read once the queue is full, to answer pings (64 KiB).
        open_timeout: Seconds for the TLS and opening handshakes together (10).
        close_timeout: Seconds for the closing handshake (10).
        ping_interval: Seconds of silence before a keepalive ping (20; ``math.inf``: no
            keepalive).
        ping_timeout: Seconds after a ping before the peer is declared gone (20).
        send_timeout: Seconds one ``send()`` may wait for a peer that does not read (60).
        broadcast_backlog: ``broadcast()`` messages a client may lag behind before it is
            closed with 1008 (64).
        compression: Whether permessage-deflate is negotiated (``True``).
        limits: The :class:`~trionet.HandshakeLimits` of the opening request.
    """

    data_type: str = "text"
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    max_fragments: int = fragment_limit(DEFAULT_MAX_MESSAGE_SIZE)
    max_queue: int = DEFAULT_MAX_QUEUE
    read_ahead: int = DEFAULT_READ_AHEAD
    open_timeout: float = 10.0
    close_timeout: float = 10.0
    ping_interval: float = 20.0
    ping_timeout: float = 20.0
    send_timeout: float = 60.0
    broadcast_backlog: int = 64
    compression: bool = True
    limits: HandshakeLimits = attrs.field(factory=HandshakeLimits)

    @classmethod
    def make(
        cls,
        *,
        data_type: object = "text",
        max_message_size: object = DEFAULT_MAX_MESSAGE_SIZE,
        max_queue: object = DEFAULT_MAX_QUEUE,
        read_ahead: object = DEFAULT_READ_AHEAD,
        open_timeout: object = 10.0,
        close_timeout: object = 10.0,
        ping_interval: object = 20.0,
        ping_timeout: object = 20.0,
        send_timeout: object = 60.0,
        broadcast_backlog: object = 64,
        compression: object = True,
        limits: object = None,
    ) -> WebSocketOptions:
        """Check every argument and build the options.

        Raises:
            TypeError: an argument has the wrong type (the message names it).
            ValueError: an argument is out of range (the message names it).
        """
        if not isinstance(data_type, str):
            raise TypeError(f"data_type must be a str, not {type(data_type).__name__}")
        if data_type not in DATA_TYPES:
            raise ValueError(f"data_type must be one of {', '.join(DATA_TYPES)}; got {data_type!r}")
        if limits is not None and not isinstance(limits, HandshakeLimits):
            raise TypeError(f"limits must be a HandshakeLimits, not {type(limits).__name__}")
        size = _positive_int(max_message_size, "max_message_size")
        return cls(
            data_type=data_type,
            max_message_size=size,
            max_fragments=fragment_limit(size),
            max_queue=_positive_int(max_queue, "max_queue"),
            read_ahead=_positive_int(read_ahead, "read_ahead"),
            open_timeout=check_timeout(open_timeout, argument="open_timeout"),
            close_timeout=check_timeout(close_timeout, argument="close_timeout"),
            ping_interval=check_timeout(ping_interval, argument="ping_interval", allow_none=True),
            ping_timeout=check_timeout(ping_timeout, argument="ping_timeout", allow_none=True),
            send_timeout=check_timeout(send_timeout, argument="send_timeout", allow_none=True),
            broadcast_backlog=_positive_int(broadcast_backlog, "broadcast_backlog"),
            compression=check_bool(compression, argument="compression"),
            limits=limits or HandshakeLimits(),
        )

    @property
    def keepalive(self) -> bool:
        """Whether keepalive pings are sent at all."""
        return math.isfinite(self.ping_interval)

    def memory_budget(self) -> Mapping[str, int]:
        """The most memory one connection can hold in buffers, by part, in bytes.

        * ``queue``: messages waiting for the application, ``max_queue`` of them at
          ``max_message_size`` each;
        * ``assembly``: the message being received (``max_message_size``);
        * ``read_ahead``: messages queued past a full queue, so that pings and a close
          frame are still seen: ``read_ahead`` bytes, plus the message that crosses it;
        * ``receive``: one receive from the kernel;
        * ``compression``: zlib's inflate and deflate state, when negotiated;
        * ``broadcast``: messages waiting to go out through ``broadcast()``;
        * ``handshake``: the request head while the connection opens;
        * ``total``: the sum, the worst case for one connection.
        """
        parts = {
            "queue": self.max_queue * self.max_message_size,
            "assembly": self.max_message_size,
            "read_ahead": self.read_ahead + self.max_message_size,
            "receive": _RECEIVE_CHUNK,
            "compression": _INFLATE_MEMORY + _DEFLATE_MEMORY if self.compression else 0,
            "broadcast": self.broadcast_backlog * self.max_message_size,
            "handshake": self.limits.max_head,
        }
        parts["total"] = sum(parts.values())
        return parts
