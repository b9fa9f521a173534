"""The network task of a TCP connection: open, read, wind down, release.

These functions are the body of :class:`~trionet._connection.TCPConnection`'s one task,
kept apart from the class (its public API and the requests other tasks make of it), as
:mod:`trionet._wstask` is for WebSocket connections.  The lifecycle table
(:mod:`trionet._state`) decides which events are delivered; this module feeds it inputs
and acts on the result.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

import trio

from . import _endpoints
from ._events import ErrorCode, ErrorRecord, TCPEvent, TCPEventType, data_event
from ._handlers import HandlerFailure
from ._sockets import open_transport
from ._state import Input, State
from ._transport import TransportError
from ._util import end_within

if TYPE_CHECKING:
    from ._connection import TCPConnection

__all__ = ["pull", "run"]


async def _emit(
    conn: TCPConnection, event_type: TCPEventType, errors: tuple[ErrorRecord, ...] = ()
) -> None:
    """Deliver one lifecycle event; ``on_error``/``on_terminate`` failures are only logged."""
    event = TCPEvent(type=event_type, ip=conn._ip, port=conn._port, errors=errors)
    try:
        await conn._dispatcher.deliver(conn, event)
    except HandlerFailure as failure:
        if event_type in (TCPEventType.ERROR, TCPEventType.TERMINATE):
            conn._handler_failed(failure)
            return
        raise


async def _feed(conn: TCPConnection, what: Input, errors: tuple[ErrorRecord, ...] = ()) -> None:
    for event_type in conn._lifecycle.handle(what):
        await _emit(conn, event_type, errors)


async def _fail(conn: TCPConnection, errors: tuple[ErrorRecord, ...]) -> None:
    """Feed a failure; a callback that raises while being told is logged, not re-fed."""
    try:
        await _feed(conn, Input.FAIL, errors)
    except HandlerFailure as failure:  # pragma: no cover - ERROR callbacks are contained
        conn._handler_failed(failure)


async def run(conn: TCPConnection, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
    """The network task: open, read until EOF, then wind down; never raises."""
    conn._network_task = trio.lowlevel.current_task()
    conn._token = trio.lowlevel.current_trio_token()
    task_status.started()
    try:
        with conn._read_scope:
            await _open(conn)
            # shutdown() may already have half-closed us while `connection` was
            # being delivered: reading goes on in WRITE_CLOSED too.
            if conn._lifecycle.state in (State.OPEN, State.WRITE_CLOSED):
                await _read(conn)
            if conn._lifecycle.state is State.READ_CLOSED and conn._events is not None:
                conn._interruptible = True
                await conn._consumer_done.wait()
    except TransportError as exc:
        conn._record(exc.record)
        await _fail(conn, (exc.record,))
    except HandlerFailure as failure:
        records = (*(conn._failure or ()), conn._handler_failed(failure))
        await _fail(conn, records)
    finally:
        # One budget for the whole orderly end (callbacks for close/error, flush, FIN,
        # drain), counted from the close request, or from now if the scope was cancelled.
        if not conn._close_requested:
            conn._close_deadline = trio.current_time() + conn._close_timeout
        # on_terminate gets a budget of its own: it must run even after a timeout.
        await end_within(
            conn._close_deadline,
            conn._close_timeout,
            lambda: _wind_down(conn),
            lambda timed_out: _release(conn, timed_out=timed_out),
        )


async def _open(conn: TCPConnection) -> None:
    """Connect (outgoing) or adopt the accepted stream, then flush what was queued."""
    try:
        if conn._transport is None:
            try:
                conn._interruptible = True
                stream, conn._ip, conn._port = await _endpoints.connect(
                    conn._address,
                    conn._port,
                    timeout=conn._connection_timeout,
                    no_delay=conn._no_delay,
                )
            except TransportError as exc:
                conn._record(exc.record)
                await _fail(conn, (exc.record,))
                return
            finally:
                conn._interruptible = False
            conn._transport = open_transport(stream)
        else:
            conn._transport.set_no_delay(conn._no_delay)
        transport = conn._transport
        await transport.gate.acquire()
        try:
            while conn._pending:
                chunk = conn._pending.popleft()
                conn._pending_size -= len(chunk)
                await transport.send_locked(chunk)
            # Synchronous with the flush: no send() can slip in between.
            opened = conn._lifecycle.handle(Input.CONNECTED)
        finally:
            transport.gate.release()
    finally:
        conn._opened.set()
    for event_type in opened:
        await _emit(conn, event_type)


async def _read(conn: TCPConnection) -> None:
    """Deliver data until the peer's FIN (``close``) or a request to close."""
    transport = conn._transport
    assert transport is not None
    lifecycle = conn._lifecycle
    dispatcher = conn._dispatcher
    start = dispatcher.start
    ip, port = conn._ip, conn._port
    lending = conn._lending
    if lending is not None and not lending.start(transport):
        lending = None
    # The last chunk (up to 64 KiB), its event and the handler's finished coroutine:
    # dropped before the connection waits for the peer, as in trionet._wstask.
    data = b""
    event: TCPEvent | None = None
    pending: Awaitable[Any] | None = None
    while not conn._close_requested:
        conn._interruptible = True
        if lending is not None and lending.queue.lendable:
            # The consumer reads (see pull) until it hands something back.
            handed_back = await lending.lend()
            conn._interruptible = False
            if handed_back is None:
                continue
            data = b""  # the peer's FIN
        else:
            ready = await transport.receive_ready()
            if ready is None:
                data = b""  # the last chunk goes before the wait, not after it
                event = pending = None
                ready = await transport.receive(missed=True)
            data = ready
        conn._interruptible = False
        if conn._close_requested:
            break  # terminate() came while the data was on its way: it is discarded
        if not data:
            await _feed(conn, Input.PEER_EOF)
            return
        if lifecycle.handle(Input.DATA):
            # dispatcher.deliver(), unrolled: this runs for every chunk.
            event = data_event(data, ip, port)
            pending = start(conn, event)
            if pending is not None:
                try:
                    await pending
                except Exception as exc:
                    raise dispatcher.failure(event, exc) from exc


async def pull(conn: TCPConnection) -> None:
    """The read step of :func:`_read`, run by an ``events()`` consumer reading is lent to.

    Data becomes its ``data`` event here; the peer's FIN and failures are handed back
    to the network task, which handles them as if it had read them itself.
    """
    transport, lending = conn._transport, conn._lending
    assert transport is not None
    assert lending is not None
    data = await lending.receive(transport)
    if data is None or conn._close_requested:
        return  # handed back, or the connection is ending: the network task goes on
    if conn._lifecycle.handle(Input.DATA):
        lending.queue.put(data_event(data, conn._ip, conn._port))


async def _wind_down(conn: TCPConnection) -> None:
    """Deliver ``close``/``error`` if still due, then close the socket (bounded)."""
    lifecycle = conn._lifecycle
    if conn._failure is not None and lifecycle.state is not State.CLOSED:
        await _fail(conn, conn._failure)
    if lifecycle.state in (State.CONNECTING, State.OPEN, State.WRITE_CLOSED, State.READ_CLOSED):
        aborted: tuple[ErrorRecord, ...] = ()
        if lifecycle.state is State.CONNECTING:
            aborted = (
                ErrorRecord(
                    err_code=ErrorCode.CONNECT_ABORTED,
                    message=f"connection to {conn._address}:{conn._port} was terminated "
                    "before it was established",
                    component_signature="tcp",
                ),
            )
            conn._errors.extend(aborted)
        try:
            await _feed(conn, Input.CLOSE, aborted)
        except HandlerFailure as failure:
            await _fail(conn, (conn._handler_failed(failure),))
    transport = conn._transport
    if transport is not None:
        if not transport.broken:
            try:
                await transport.close_orderly()
            except TransportError as exc:
                conn._record(exc.record)
        await transport.aclose()
    if lifecycle.state is State.CLOSING:
        lifecycle.handle(Input.FINISHED)


async def _release(conn: TCPConnection, *, timed_out: bool) -> None:
    """Make sure the socket is closed, then deliver ``terminate`` (exactly once).

    Args:
        conn: The connection.
        timed_out: The wind-down ran out of its close budget (a callback or the peer
            was too slow); the socket is then closed hard here.
    """
    if conn._transport is not None:
        await conn._transport.aclose()
    if timed_out:
        record = ErrorRecord(
            err_code=ErrorCode.CLOSE_TIMEOUT,
            message=f"ending the connection took longer than {conn._close_timeout:g} s; "
            "closed hard",
            component_signature="tcp",
        )
        conn._record(record)
        # Delivers error only if neither close nor error was delivered yet.
        await _fail(conn, (record,))
    conn._closed.set()
    await _feed(conn, Input.RELEASE)
    conn._dispatcher.finish()
