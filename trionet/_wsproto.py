"""WebSocket framing on wsproto, with trionet's limits (sans-I/O: no trio, no sockets).

:class:`FrameLayer` takes the bytes a connection received and returns what they mean
(complete messages, control frames, a close, a failure) together with the bytes to send
back; messages go out through it too.  wsproto parses and builds the frames; this layer
adds what a public server needs on top:

* **reassembly with a limit**: fragments are joined into one message, and a message over
  ``max_message_size`` bytes (counted after decompression, in UTF-8 bytes for text) or
  with too many fragments fails with 1009 while it arrives, not after;
* **a bounded decompressor** (:class:`BoundedDeflate`): wsproto inflates a compressed
  frame in one call, however large the result; a few KiB of deflate can expand to
  gigabytes.  Here inflation stops at the message budget and the connection fails with 1009;
* ``data_type``: text as ``str``, every message as ``bytes`` (``"blob"``), or text parsed as
  JSON (``"object"``; invalid JSON fails with 1007).
"""

from __future__ import annotations

import json
import struct
import zlib
from typing import Any

from wsproto.connection import Connection, ConnectionState
from wsproto.events import (
    BytesMessage,
    CloseConnection,
    Ping,
    Pong,
    TextMessage,
)
from wsproto.extensions import PerMessageDeflate
from wsproto.frame_protocol import CloseReason, FrameDecoder
from wsproto.utilities import LocalProtocolError as WsprotoLocalError

from ._wsevents import CloseCode
from ._wsfast import ACCELERATED, LONGEST, TEXT, AcceleratedDecoder, peer_close, split_frames

__all__ = [
    "CLOSED",
    "FAILED",
    "GATHER_FROM",
    "MESSAGE",
    "PONG",
    "BoundedDeflate",
    "FrameLayer",
    "fragment_limit",
]

# What FrameLayer.feed() reports, as the first item of each tuple it returns:
#: ``(MESSAGE, data, size)``: a complete message, converted for ``data_type``, and its size
#: in bytes (UTF-8 for text, after decompression).
MESSAGE = 0
#: ``(PONG, payload)``: the peer answered a ping.
PONG = 1
#: ``(CLOSED, code, reason)``: the peer's close frame (answered in :attr:`FrameLayer.outgoing`).
CLOSED = 2
#: ``(FAILED, code, reason)``: the peer broke the protocol or a limit; a close frame with
#: ``code`` is in :attr:`FrameLayer.outgoing`.
FAILED = 3


def fragment_limit(max_message_size: int) -> int:
    """How many frames one message may span: one per 64 bytes of the size limit, at least 16.

    Empty continuation frames cost nothing against the byte limit, so a peer could keep
    a message open forever with them; a cap tied to the size limit stops that while
    leaving room for any sensible fragmentation (64-byte fragments of a full-size message).
    """
    return max(16, max_message_size // 64)


class BoundedDeflate(PerMessageDeflate):
    """permessage-deflate (RFC 7692) whose inflation stops at a byte budget per message.

    When a message would inflate past ``max_message_size``, the frame is refused with
    close code 1009 before more than the budget (plus one byte) was produced.
    """

    def __init__(self, max_message_size: int, **params: Any) -> None:
        super().__init__(**params)
        self.max_message_size = max_message_size  # inflated bytes allowed per message
        self.inflated = 0  # bytes inflated so far in the current message

    def _inflate(self, data: bytes) -> bytes | CloseReason:
        decompressor = self._decompressor
        assert decompressor is not None
        budget = self.max_message_size - self.inflated
        try:
            out = decompressor.decompress(data, budget + 1)
        except zlib.error:
            return CloseReason.INVALID_FRAME_PAYLOAD_DATA
        self.inflated += len(out)
        if self.inflated > self.max_message_size or decompressor.unconsumed_tail:
            return CloseReason.MESSAGE_TOO_BIG
        return out

    def frame_inbound_payload_data(self, proto: Any, data: bytes) -> bytes | CloseReason:
        """Inflate one piece of a compressed frame, within the budget."""
        if not self._inbound_compressed or not self._inbound_is_compressible:
            return data
        return self._inflate(data)

    def frame_inbound_complete(self, proto: Any, fin: bool) -> bytes | CloseReason | None:
        """End of a frame: at the end of a compressed message, flush the inflater."""
        if not fin:
            return None
        if not (self._inbound_compressed and self._inbound_is_compressible):
            self._inbound_compressed = None
            self.inflated = 0
            return None
        # The four bytes RFC 7692 strips from every compressed message (section 7.2.2);
        # inflating them flushes what the decompressor still holds, within the budget.
        out = self._inflate(b"\x00\x00\xff\xff")
        self.inflated = 0
        if isinstance(out, CloseReason):
            return out
        no_context_takeover = (
            self.server_no_context_takeover if proto.client else self.client_no_context_takeover
        )
        if no_context_takeover:
            self._decompressor = None
        self._inbound_compressed = None
        return out


#: Messages from this size on are sent with :meth:`FrameLayer.message_parts`, their payload
#: not joined to the header.  Smaller ones are joined: the copy costs less than a gather
#: write, and they may be corked with other answers (trionet._transport.CORK_LIMIT).
GATHER_FROM = 65536

# Server frame headers: FIN + opcode, then the 7-bit length or its 16/64-bit extension.
_HEADER_16 = struct.Struct("!BBH")
_HEADER_64 = struct.Struct("!BBQ")


class FrameLayer:
    """One WebSocket connection's frames after the handshake (wsproto ``Connection``).

    Call :meth:`feed` with received bytes and act on what it returns; then send
    :attr:`outgoing` (pongs, close frames) if it is not empty, and clear it.
    """

    __slots__ = (
        "_conn",
        "_data_type",
        "_decoder",
        "_fast",
        "_fragments",
        "_max_fragments",
        "_max_size",
        "_parts",
        "_plain",
        "_size",
        "_tail",
        "outgoing",
    )

    def __init__(
        self,
        conn: Connection,
        *,
        data_type: str,
        max_message_size: int,
        max_fragments: int | None = None,
        accelerate: bool = True,
    ) -> None:
        """Wrap ``conn``; ``accelerate=False`` leaves every frame to wsproto (for tests)."""
        self._conn = conn  # wsproto's frame-level connection
        self._data_type = data_type  # "text", "blob" or "object"
        self._max_size = max_message_size  # bytes per message
        self._max_fragments = max_fragments or fragment_limit(max_message_size)
        self._parts: list[Any] = []  # fragments of the message being received
        self._size = 0  # bytes received of that message
        self._fragments = 0  # frames received of that message
        #: Bytes to send as a consequence of what was fed (pongs, close frames).
        self.outgoing = bytearray()
        proto = conn._proto
        # Server frames without an extension need no mask and no transformation: their
        # header is built here, and the payload is copied once (wsproto copies it thrice).
        self._plain = not proto.client and not proto.extensions
        decoder = proto._frame_decoder
        if accelerate and ACCELERATED and type(decoder) is FrameDecoder:
            # This instance only: other wsproto users in the process are not affected.
            decoder.__class__ = AcceleratedDecoder
        self._decoder = decoder  # wsproto's, to tell whether it holds part of a frame
        # Whole data frames and the closing frame are read without wsproto's parser while
        # wsproto holds nothing (see trionet._wsfast); the close needs wsproto's state.
        self._fast = accelerate and self._plain and hasattr(conn, "_state")
        self._tail = b""  # the start of a data frame the fast path waits to see whole

    @property
    def closed(self) -> bool:
        """Whether the closing handshake is complete (both close frames seen)."""
        return self._conn.state is ConnectionState.CLOSED

    @property
    def can_send(self) -> bool:
        """Whether messages can still be sent (no close frame sent yet)."""
        return self._conn.state is ConnectionState.OPEN

    def feed(self, data: bytes) -> list[tuple[Any, ...]]:
        """Process received bytes; returns what they meant, in order (see the constants)."""
        conn = self._conn
        state = conn.state
        if state is ConnectionState.CLOSED or state is ConnectionState.REMOTE_CLOSING:
            return []  # after the peer's close frame nothing more counts
        if self._tail:
            data = self._tail + data
            self._tail = b""
        out: list[tuple[Any, ...]] = []
        if (
            self._fast
            and state is ConnectionState.OPEN
            and not self._parts
            and self._decoder.header is None
            and not len(self._decoder.buffer)
        ):
            data = self._read_fast(data, out)
            if not data:
                return out
        conn.receive_data(data)
        for event in conn.events():
            if isinstance(event, (TextMessage, BytesMessage)):
                item = self._message_part(event.data, event.message_finished)
                if item is not None:
                    out.append(item)
                    if item[0] == FAILED:
                        break
            elif isinstance(event, Ping):
                if conn.state is ConnectionState.OPEN:
                    self.outgoing += conn.send(event.response())
            elif isinstance(event, Pong):
                out.append((PONG, event.payload))
            elif isinstance(event, CloseConnection):
                out.append(self._closing(event))
                break
        return out

    def _message_part(self, data: Any, finished: bool) -> tuple[Any, ...] | None:
        parts = self._parts
        # Text counts in UTF-8 bytes; isascii() is O(1) and spares the encode in most cases.
        ascii_only = type(data) is bytes or data.isascii()
        size = self._size + (len(data) if ascii_only else len(data.encode()))
        self._fragments += 1
        if size > self._max_size:
            return self._fail(
                CloseCode.MESSAGE_TOO_BIG, f"message larger than {self._max_size} bytes"
            )
        if self._fragments > self._max_fragments:
            return self._fail(
                CloseCode.MESSAGE_TOO_BIG, f"message in more than {self._max_fragments} fragments"
            )
        if not finished:
            parts.append(data)
            self._size = size
            return None
        if parts:
            parts.append(data)
            data = "".join(parts) if type(data) is str else b"".join(parts)
            parts.clear()
        self._size = 0
        self._fragments = 0
        if type(data) is str:
            if self._data_type == "blob":
                data = data.encode()
            elif self._data_type == "object":
                try:
                    data = json.loads(data)
                except ValueError as exc:
                    return self._fail(CloseCode.INVALID_DATA, f"invalid JSON: {exc}")
        elif type(data) is bytearray:
            data = bytes(data)
        return (MESSAGE, data, size)

    def _closing(self, event: CloseConnection) -> tuple[Any, ...]:
        conn = self._conn
        if conn.state is ConnectionState.OPEN:
            # wsproto reports its own parse failures as a close "from" the peer while its
            # state stays OPEN: that is a failure, and our close frame is still to send.
            if event.code == CloseReason.MESSAGE_TOO_BIG:
                reason = f"message larger than {self._max_size} bytes once decompressed"
            else:
                reason = event.reason or "protocol error"
            return self._fail(int(event.code), reason)
        if conn.state is ConnectionState.REMOTE_CLOSING:
            self.outgoing += conn.send(event.response())
        return (CLOSED, int(event.code), event.reason or "")

    def _read_fast(self, data: bytes, out: list[tuple[Any, ...]]) -> bytes:
        """Read what the fast path takes from ``data`` into ``out``; return the rest.

        Whole plain data frames become messages; a lone close frame at the end is
        answered; the start of a data frame still arriving waits in ``_tail`` (at most
        ``max_message_size`` bytes of payload: a longer frame is wsproto's).  What is
        returned (from the first frame the fast path does not take) is wsproto's, which
        is then at a frame boundary with no message half received, as the fast path was.
        """
        frames, used, partial = split_frames(data, min(self._max_size, LONGEST))
        for first, start, payload in frames:
            if first == TEXT:
                try:
                    message: str | bytes = payload.decode()
                except UnicodeDecodeError:  # wsproto fails the connection with 1007
                    return data[start:]
            else:
                message = payload
            item = self._message_part(message, True)
            assert item is not None  # a whole message
            out.append(item)
            if item[0] == FAILED:
                return b""
        if partial:
            self._tail = data[used:]
            return b""
        if used < len(data) and data[used] == 0x88:
            closed = peer_close(data[used:])
            if closed is not None:
                code, reason, payload = closed
                self._conn._state = ConnectionState.CLOSED  # as wsproto's once it answered
                self.outgoing += bytes((0x88, len(payload))) + payload
                out.append((CLOSED, code, reason))
                return b""
        return data[used:]

    def _fail(self, code: int, reason: str) -> tuple[Any, ...]:
        self._parts.clear()
        self.outgoing += self.close(code, reason)
        return (FAILED, int(code), reason)

    # -- sending -------------------------------------------------------------------------

    def message(self, data: str | bytes | bytearray | memoryview) -> bytes:
        """The frame(s) for one message: ``str`` as text, bytes-like as binary.

        Raises:
            wsproto's LocalProtocolError: a close frame was already sent.
        """
        payload, header = self.message_parts(data)
        return header + payload

    def message_parts(self, data: str | bytes | bytearray | memoryview) -> tuple[bytes, bytes]:
        """:meth:`message` as ``(payload, header)``, so that a large one is not joined.

        The transport writes both with one gather write, which saves copying the payload
        (a megabyte message is then copied once, from ``bytearray`` or ``str``, or not at
        all).  With an extension the frames are wsproto's, returned whole with no header.

        Raises:
            wsproto's LocalProtocolError: a close frame was already sent.
        """
        if self._plain and self._conn.state is ConnectionState.OPEN:
            # Server frames without an extension: the header is built here, and the
            # payload is copied once at most (by message(); wsproto copies it thrice).
            if isinstance(data, str):
                payload, first = data.encode(), 0x81  # FIN + text
            else:
                payload, first = data if type(data) is bytes else bytes(data), 0x82
            size = len(payload)
            if size < 126:
                return payload, bytes((first, size))
            if size < 65536:
                return payload, _HEADER_16.pack(first, 126, size)
            return payload, _HEADER_64.pack(first, 127, size)
        if isinstance(data, str):
            return self._conn.send(TextMessage(data=data)), b""
        return self._conn.send(BytesMessage(data=bytes(data))), b""

    def ping(self, payload: bytes = b"") -> bytes:
        """A ping frame (``b""`` once a close frame was sent)."""
        if self._conn.state is not ConnectionState.OPEN:
            return b""
        return self._conn.send(Ping(payload=payload))

    def close(self, code: int | None, reason: str = "") -> bytes:
        """Our close frame (``b""`` if one was already sent)."""
        conn = self._conn
        if conn.state not in (ConnectionState.OPEN, ConnectionState.REMOTE_CLOSING):
            return b""
        try:
            event = CloseConnection(code=code or CloseReason.NO_STATUS_RCVD, reason=reason)
            return conn.send(event)
        except WsprotoLocalError:  # pragma: no cover - the state check above rules it out
            return b""
