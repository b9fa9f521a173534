"""The network task of a WebSocket connection: open, read, close, release.

These functions are the body of :class:`~trionet._wsconnection.WebSocketConnection`'s one
task, kept apart from the class (its public API and the requests other tasks make of it).
The lifecycle table (:mod:`trionet._wsstate`) decides which events are delivered; this
module only feeds it inputs and acts on the result.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Sequence
from typing import TYPE_CHECKING, Any

import trio

from ._corking import flushing_first
from ._events import ErrorCode, ErrorRecord
from ._exceptions import ConnectionClosedError
from ._handlers import HandlerFailure
from ._transport import LARGE_RECEIVE_SIZE, Transport, TransportError
from ._util import end_within
from ._wsevents import CloseCode, WebSocketEvent, WebSocketEventType, message_event
from ._wsproto import CLOSED, FAILED, MESSAGE, PONG
from ._wsstate import WSInput, WSState

if TYPE_CHECKING:
    from ._wsconnection import WebSocketConnection

__all__ = ["pull", "run"]

log = logging.getLogger("trionet.websocket")

_T = WebSocketEventType
_OPEN = WSState.OPEN


async def _emit(
    conn: WebSocketConnection, event_type: WebSocketEventType, errors: tuple[ErrorRecord, ...]
) -> None:
    """Deliver one lifecycle event; ``on_error``/``on_terminate`` failures are only logged."""
    if not conn._dispatcher.wants(event_type):
        return
    if event_type is _T.TERMINATE:
        code, reason = _final_close(conn)
        event = WebSocketEvent(type=event_type, code=code, reason=reason)
    else:
        event = WebSocketEvent(type=event_type, errors=errors)
    try:
        await conn._dispatcher.deliver(conn, event)
    except HandlerFailure as failure:
        if event_type is _T.OPEN:
            raise
        conn._handler_failed(failure)


async def _feed(
    conn: WebSocketConnection, what: WSInput, errors: tuple[ErrorRecord, ...] = ()
) -> None:
    for event_type in conn._lifecycle.handle(what):
        await _emit(conn, event_type, errors)


def _final_close(conn: WebSocketConnection) -> tuple[int, str]:
    """The code and reason ``terminate`` reports (see the explanation page)."""
    if conn._peer_close is not None:
        return conn._peer_close
    if conn._sent_close is not None:
        return conn._sent_close
    return (int(CloseCode.ABNORMAL), "")


async def run(conn: WebSocketConnection, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
    """The network task: open, read until the close, then wind down; never raises."""
    conn._network_task = trio.lowlevel.current_task()
    conn._token = trio.lowlevel.current_trio_token()
    task_status.started()
    try:
        with conn._read_scope:
            if await _open(conn):
                await _read(conn, conn._trailing)
    except TransportError as exc:
        conn._record(exc.record)
        await _feed(conn, WSInput.BREAK, (exc.record,))
    except HandlerFailure as failure:
        if isinstance(failure.__cause__, ConnectionClosedError) and conn._failure:
            # The callback's send() failed because the connection broke: that is the
            # transport's failure (already recorded), not the handler's.
            kind, _code, records = conn._failure
            await _feed(conn, kind, records)
        else:
            record = conn._handler_failed(failure)
            conn._sent_close = (int(CloseCode.INTERNAL_ERROR), "")
            await _feed(conn, WSInput.FAIL, (record,))
    finally:
        close_timeout = conn._options.close_timeout
        if not conn._close_requested:
            conn._close_deadline = trio.current_time() + close_timeout
        await end_within(
            conn._close_deadline,
            close_timeout,
            lambda: _wind_down(conn),
            lambda timed_out: _release(conn, timed_out=timed_out),
        )


async def _open(conn: WebSocketConnection) -> bool:
    """Client side: connect and upgrade; both sides: deliver ``open``.  False if failed."""
    if conn._transport is None:
        assert conn._opener is not None
        conn._interruptible = True
        failed: ErrorRecord | None = None
        try:
            with trio.fail_after(conn._options.open_timeout):
                opened = await conn._opener()
        except trio.TooSlowError:
            failed = _open_failed(conn, f"took longer than {conn._options.open_timeout:g} s")
        except TransportError as exc:
            failed = exc.record
        except Exception as exc:  # a bug or an unexpected library error: contained
            log.exception("%s: opening failed", conn)
            failed = _open_failed(conn, f"failed: {exc!r}")
        finally:
            conn._interruptible = False
        if failed is not None:
            conn._record(failed)
            await _feed(conn, WSInput.FAIL, (failed,))
            return False
        conn._transport, conn._frames, conn._protocol, conn._trailing = opened
    conn._transport.send_timeout = conn._options.send_timeout
    conn._idle_since = trio.current_time()
    await _feed(conn, WSInput.OPENED)
    return True


def _open_failed(conn: WebSocketConnection, what: str) -> ErrorRecord:
    return ErrorRecord(
        err_code=ErrorCode.HANDSHAKE_FAILED,
        message=f"opening {conn.url} {what}",
        component_signature="websocket",
    )


async def _read(conn: WebSocketConnection, first: bytes) -> None:
    """Deliver messages until a close frame, a failure, or a request to close.

    The transport stays corked while this runs: the answers to the messages of one
    received chunk (handler callbacks', and in the events() style the consumer's, which
    runs while we go back to the socket) are collected and written with one system
    call, at the latest before the connection waits for the peer again.
    """
    transport = conn._transport
    assert transport is not None
    transport.corked = transport.can_cork
    try:
        item = await _read_items(conn, transport, first)
    finally:
        transport.corked = False
    if item is not None and item[0] == CLOSED:
        conn._peer_close = (item[1], item[2])
        # PEER_CLOSE delivers no event, so nothing runs before the closing: a server's
        # close frame (corked now) goes out with its FIN in _wind_down, one write and one
        # scheduler pass for both.
        if conn._server is None:
            await transport.flush()
        await _feed(conn, WSInput.PEER_CLOSE)
        return
    await transport.flush()
    if item is not None:  # FAILED
        await _protocol_failure(conn, item[1], item[2])


async def _read_items(
    conn: WebSocketConnection, transport: Transport, data: bytes
) -> tuple[Any, ...] | None:
    """The read loop; returns the close or failure item that ended it, if any."""
    frames = conn._frames
    assert frames is not None
    transport.receive_limit = LARGE_RECEIVE_SIZE  # large messages come in larger reads
    lifecycle = conn._lifecycle
    dispatcher = conn._dispatcher
    start = dispatcher.start
    queue = conn._queue
    limit = conn._options.max_queue
    read_ahead = conn._options.read_ahead
    ahead = 0  # bytes of messages queued past a full events() queue
    lending = conn._lending
    if lending is not None and not lending.start(transport):
        lending = None
    # What one chunk leaves behind, dropped before the connection waits (see below).
    items: Sequence[tuple[Any, ...]] = ()
    item: tuple[Any, ...] = ()
    event: WebSocketEvent | None = None
    pending: Awaitable[Any] | None = None
    while not conn._close_requested:
        if not data and lending is not None and lending.queue.lendable:
            # The consumer keeps up: it reads (see pull) until it hands something back.
            # Meanwhile its corked answers are flushed here when it pokes us.
            conn._interruptible = True
            handed_back = await lending.lend(transport.flush)
            conn._interruptible = False
            if handed_back is None:
                continue
            if isinstance(handed_back, tuple):
                return handed_back  # CLOSED or FAILED
            await _peer_dropped(conn)  # b"": the peer closed TCP without a close frame
            return None
        if not data:
            conn._interruptible = conn._reading = True
            ready = await transport.receive_ready()
            if ready is None:
                # About to wait, maybe for long: the last chunk's messages, events and
                # handler coroutine go first (about 0.6 KiB on an idle connection).  Not
                # sooner: a large message freed while the next one arrives makes the
                # allocator give the memory back and fault it in again for every message
                # (ws_large lost a third of its speed that way).
                items = item = ()
                event = pending = None
                ready = await transport.receive(missed=True)
            data = ready
            conn._interruptible = conn._reading = False
            conn._received += 1
            if conn._close_requested:
                return None  # terminate() came while these bytes were on their way
            if not data:
                await _peer_dropped(conn)
                return None
            if transport.pending:
                # The events() consumer answered while we were receiving: those answers
                # go out now, not after this chunk (a peer that keeps sending would
                # otherwise keep them waiting until the cork is full).
                await transport.flush()
        items = frames.feed(data)
        if queue is not None and len(queue) < limit:
            ahead = 0
            queue.limit = 2 * limit  # room to read ahead past a full queue
        data = b""
        if frames.outgoing:
            await _send_outgoing(conn)
        for item in items:
            kind = item[0]
            if kind == MESSAGE:
                if lifecycle.handle(WSInput.MESSAGE):
                    if queue is not None and len(queue) >= limit:
                        # Reading ahead past a full queue: once the messages let in
                        # this way pass read_ahead bytes, the next one waits for room.
                        ahead += item[2]
                        if ahead > read_ahead:
                            queue.limit = limit
                    event = message_event(item[1])
                    pending = start(conn, event)
                    if pending is not None:
                        conn._interruptible = queue is not None
                        try:
                            await flushing_first(pending, transport)
                        except Exception as exc:
                            raise dispatcher.failure(event, exc) from exc
                        finally:
                            conn._interruptible = False
            elif kind != PONG:  # a pong needs nothing: any bytes count as life
                return item  # CLOSED or FAILED
        if queue is None:
            # Handler style: this chunk's answers are all there; send them now.  (In
            # the events() style the consumer has not run yet: the transport flushes
            # before it waits for the peer, after the consumer had its turn.)  The
            # receive that follows yields, so a quiet connection's write needs no pass.
            await transport.flush_before_receive()
    return None


async def pull(conn: WebSocketConnection) -> None:
    """The read step of :func:`_read_items`, run by an ``events()`` consumer (lent reading).

    Messages become ``message`` events here and pongs are answered; a close frame, a
    protocol failure, the end of the stream and transport failures are handed back to the
    network task, which goes on as if it had read them itself.
    """
    transport, frames, lending = conn._transport, conn._frames, conn._lending
    assert transport is not None
    assert frames is not None
    assert lending is not None
    conn._reading = True
    try:
        data = await lending.receive(transport)
    finally:
        conn._reading = False
    if data is None or conn._close_requested:
        return  # handed back, or the connection is ending: the network task goes on
    conn._received += 1
    items = frames.feed(data)
    if frames.outgoing:
        try:
            await _send_outgoing(conn)
        except TransportError as exc:
            lending.hand_back(exc)
            return
    queue = lending.queue
    lifecycle = conn._lifecycle
    for item in items:
        kind = item[0]
        if kind == MESSAGE:
            if lifecycle.handle(WSInput.MESSAGE):
                queue.put(message_event(item[1]))
        elif kind != PONG:
            lending.hand_back(item)  # the messages before it are queued already
            return
    if transport.pending:
        queue.poke()


async def _send_outgoing(conn: WebSocketConnection) -> None:
    """Send the frames the protocol owes the peer (pongs, close frames)."""
    frames = conn._frames
    transport = conn._transport
    assert frames is not None
    assert transport is not None
    data = bytes(frames.outgoing)
    frames.outgoing.clear()
    await transport.send(data)


async def _peer_dropped(conn: WebSocketConnection) -> None:
    record = ErrorRecord(
        err_code=ErrorCode.CLOSED_ABNORMALLY,
        message="the peer closed the connection without a close frame (1006)",
        component_signature="websocket",
    )
    conn._record(record)
    await _feed(conn, WSInput.BREAK, (record,))


async def _protocol_failure(conn: WebSocketConnection, code: int, reason: str) -> None:
    conn._parser_failed = True
    record = ErrorRecord(
        err_code=ErrorCode.PROTOCOL_ERROR,
        message=f"closed with {code}: {reason}",
        component_signature="websocket",
    )
    conn._record(record)
    conn._sent_close = (code, reason)
    await _feed(conn, WSInput.FAIL, (record,))


async def _wind_down(conn: WebSocketConnection) -> None:
    """Deliver a pending failure, do the closing handshake, close TCP (bounded)."""
    lifecycle = conn._lifecycle
    frames = conn._frames
    transport = conn._transport
    if conn._failure is not None and lifecycle.state in (WSState.CONNECTING, _OPEN):
        kind, code, records = conn._failure
        if kind is WSInput.FAIL or code == CloseCode.POLICY_VIOLATION:
            conn._sent_close = (code, "")
        await _feed(conn, kind, records)
    if lifecycle.state in (WSState.CONNECTING, _OPEN):
        await _feed(conn, WSInput.CLOSE, ())
    if transport is not None and frames is not None and not transport.broken:
        try:
            close = conn._sent_close or conn._local_close
            data = frames.close(*close)
            if frames.outgoing:
                data = bytes(frames.outgoing) + data
                frames.outgoing.clear()
            if conn._peer_close is not None and frames.closed and conn._server is not None:
                # The peer closed first (the usual end): our close frame (given here or
                # corked by _read) goes out, and closing the socket below sends the FIN
                # right behind it, the server closing TCP first (RFC 6455 7.1.1).
                await transport.send_eager(data)
            else:
                if data:
                    await transport.send(data)
                if conn._peer_close is None and not conn._parser_failed:
                    await _await_peer_close(conn)
                if frames.closed and conn._server is not None:
                    # Both close frames are through: the server closes TCP first and does
                    # not wait for a client that keeps its side open.
                    await transport.send_eof()
                else:
                    # FIN, then read until the peer's: closing with unread data would send
                    # an RST, which can destroy our close frame before the peer reads it.
                    await transport.close_orderly()
        except TransportError as exc:
            conn._record(exc.record)
    if transport is not None:
        await transport.aclose()
    if lifecycle.state is WSState.CLOSING:
        lifecycle.handle(WSInput.FINISHED)


async def _await_peer_close(conn: WebSocketConnection) -> None:
    """After our close frame: read and discard until the peer's close frame or EOF."""
    transport = conn._transport
    frames = conn._frames
    assert transport is not None
    assert frames is not None
    while not frames.closed:
        data = await transport.receive()
        if not data:
            return
        for item in frames.feed(data):
            if item[0] == CLOSED:
                conn._peer_close = (item[1], item[2])
            elif item[0] == FAILED:
                return


async def _release(conn: WebSocketConnection, *, timed_out: bool) -> None:
    """Make sure TCP is closed, then deliver ``terminate`` (exactly once)."""
    if conn._transport is not None:
        await conn._transport.aclose()
    if timed_out:
        record = ErrorRecord(
            err_code=ErrorCode.CLOSE_TIMEOUT,
            message=f"closing took longer than {conn._options.close_timeout:g} s; closed hard",
            component_signature="websocket",
        )
        conn._record(record)
        await _feed(conn, WSInput.BREAK, (record,))
    conn._lifecycle.handle(WSInput.FINISHED)
    conn._closed.set()
    if conn._on_closed is not None:
        conn._on_closed()
    await _feed(conn, WSInput.RELEASE)
    conn._dispatcher.finish()
