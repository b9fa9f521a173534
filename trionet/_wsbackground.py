"""What WebSocket connections need besides their network task: keepalive and broadcast.

Both are done without a standing task per connection (each costs memory on a server with
thousands of idle clients):

* **Keepalive**: one :func:`run_keepalive` task per server (or client) looks at every
  connection a few times per ping interval.  A connection that received nothing for
  ``ping_interval`` gets a ping, written by a short task of its own; if nothing at all
  arrives within ``ping_timeout`` of the ping being *written*, the peer is declared dead
  (close code 1011).  The clock starts when the ping is out, not when it was wanted: a
  peer that is slow to read our data delays our ping, and is never called dead because
  our own send buffer was full (a peer that stops reading altogether is caught by
  ``send_timeout`` instead).  Any received bytes, not only the pong, count as life.
* **Broadcast**: :func:`enqueue` appends a message to a connection's backlog and starts a
  short sender task if none runs; a client that falls ``broadcast_backlog`` messages
  behind is closed with 1008.  ``broadcast()`` itself never waits for any client.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import trio

from ._events import ErrorCode, ErrorRecord
from ._exceptions import ConnectionClosedError
from ._transport import TransportError
from ._wsevents import CloseCode
from ._wsstate import WSInput, WSState

if TYPE_CHECKING:
    from ._wsconnection import WebSocketConnection

__all__ = ["enqueue", "run_keepalive", "tick"]

log = logging.getLogger("trionet.websocket")


def check_period(interval: float, timeout: float) -> float:
    """How often :func:`run_keepalive` looks: a quarter of the shorter time, 0.05-5 s."""
    return min(5.0, max(0.05, min(interval, timeout) / 4))


async def run_keepalive(
    connections: Callable[[], Iterable[WebSocketConnection]],
    interval: float,
    timeout: float,  # noqa: ASYNC109 - the ping timeout, not this call's
) -> None:
    """Tick every connection ``connections()`` returns, forever (cancel to stop)."""
    period = check_period(interval, timeout)
    while True:
        await trio.sleep(period)
        now = trio.current_time()
        for conn in list(connections()):
            tick(conn, now, interval, timeout)


def tick(conn: WebSocketConnection, now: float, interval: float, timeout: float) -> None:
    """Look at one connection: note life, send a ping when idle, fail it when dead."""
    if conn._lifecycle.state is not WSState.OPEN:
        return
    if conn._received != conn._seen or not conn._reading:
        # Bytes arrived; or we are not reading (the application's queue is full, or a
        # callback runs), so a ping's answer could not be seen: the peer is not at fault.
        conn._seen = conn._received
        conn._idle_since = now
        conn._ping_written = None
        return
    if conn._ping_sending:
        return
    written = conn._ping_written
    if written is None:
        if now - conn._idle_since >= interval:
            conn._ping_sending = True
            conn._spawn(lambda: _send_ping(conn))
    elif now - written >= timeout:
        record = ErrorRecord(
            err_code=ErrorCode.KEEPALIVE_TIMEOUT,
            message=f"no answer to a ping within {timeout:g} s; the peer is gone",
            component_signature="websocket",
        )
        conn._fail_from_outside(WSInput.FAIL, int(CloseCode.INTERNAL_ERROR), record)


async def _send_ping(conn: WebSocketConnection) -> None:
    transport, frames = conn._transport, conn._frames
    try:
        if transport is None or frames is None:
            return
        async with transport.gate:
            data = frames.ping(conn._id.to_bytes(8, "big"))
            if data:
                await transport.send_locked(data)
        conn._ping_written = trio.current_time()
    except TransportError as exc:
        conn._transport_failed(exc)
    finally:
        conn._ping_sending = False


def enqueue(conn: WebSocketConnection, message: Any, limit: int) -> None:
    """Queue ``message`` for ``conn`` (never waits); close ``conn`` if it fell too far behind."""
    if conn._lifecycle.state is not WSState.OPEN:
        return
    backlog = conn._backlog
    transport, frames = conn._transport, conn._frames
    if (
        not backlog
        and not conn._backlog_running
        and transport is not None
        and frames is not None
        and transport.can_cork
        and not transport.gate._held
        and frames.can_send
    ):
        # Nobody is sending on this connection: write the frame now, as far as the socket
        # takes it, so that a burst of broadcasts costs a client with room nothing.
        transport.pending += frames.message(message)
        transport.flush_nowait()
        if transport.pending:  # the rest goes out from a task, before anything else
            conn._backlog_running = True
            conn._spawn(lambda: _drain(conn))
        return
    if backlog is None:
        backlog = conn._backlog = deque()  # made on demand: most connections never need it
    if len(backlog) >= limit:
        record = ErrorRecord(
            err_code=ErrorCode.SLOW_CONSUMER,
            message=f"the client fell {limit} broadcast messages behind; closed with 1008",
            component_signature="websocket",
        )
        backlog.clear()
        conn._fail_from_outside(WSInput.FAIL, int(CloseCode.POLICY_VIOLATION), record)
        return
    backlog.append(message)
    if not conn._backlog_running:
        conn._backlog_running = True
        conn._spawn(lambda: _drain(conn))


async def _drain(conn: WebSocketConnection) -> None:
    backlog = conn._backlog
    try:
        if conn._transport is not None:
            await conn._transport.flush()
        while backlog:
            await conn.send(backlog.popleft())
    except ConnectionClosedError:
        if backlog:
            backlog.clear()
    except TransportError as exc:
        if backlog:
            backlog.clear()
        conn._transport_failed(exc)
    finally:
        conn._backlog_running = False
