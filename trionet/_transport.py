"""The I/O edge: the only module that awaits on byte streams and sockets.

Everything that can fail here fails as :class:`TransportError`, which carries the
:class:`~trionet.ErrorRecord` describing it; trio's and the operating system's exceptions
are translated once, in this module, and nowhere else.
"""

from __future__ import annotations

import errno
import math
import os
import sys
from collections.abc import Awaitable, Callable

import trio

from ._events import ErrorCode, ErrorRecord

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup  # type: ignore[import-not-found]

__all__ = [
    "LARGE_RECEIVE_SIZE",
    "RECEIVE_SIZE",
    "SendGate",
    "StreamTransport",
    "Transport",
    "TransportError",
]

# How many bytes one receive asks the kernel for, and so the largest ``data`` event.
#
# Every chunk costs one event object, one trip through the dispatcher and, in iteration
# style, one slot in the event channel, so larger chunks spread those costs over more bytes.
# 64 KiB is what trio's own SocketStream uses by default and matches Linux's default socket
# receive buffer on loopback; past it the gain in throughput is small while the memory a slow
# consumer can pin (chunk size x channel slots) grows linearly.
RECEIVE_SIZE = 65536

# How far a socket transport's reads may grow while data streams in (see
# :attr:`Transport.receive_limit`): a WebSocket connection reads a large message in 256 KiB
# pieces, a quarter of the system calls and of the per-chunk work (ws_large: +30 %).
# Reads start at RECEIVE_SIZE again whenever one comes back short, so small messages never
# pay for a large buffer.
LARGE_RECEIVE_SIZE = 262144

# How many bytes corked sends collect before they are written anyway.
#
# Corking exists to turn many small answers into one system call; past a receive's worth
# of data there is nothing left to gain, and the bound keeps a handler that sends a lot from
# one message from piling it up in memory instead of feeling the peer's backpressure.
CORK_LIMIT = 65536


class TransportError(Exception):
    """A failure at the I/O edge, already translated into an :class:`ErrorRecord`."""

    def __init__(self, record: ErrorRecord) -> None:
        super().__init__(record.message)
        self.record = record


def _errno_of(exc: BaseException) -> int | None:
    """The first ``errno`` found on ``exc``, its cause chain, or inside an exception group."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno:
            return current.errno
        if isinstance(current, BaseExceptionGroup):
            todo.extend(current.exceptions)
        for linked in (current.__cause__, current.__context__):
            if linked is not None:
                todo.append(linked)
    return None


def _broken(exc: BaseException, doing: str) -> TransportError:
    code = _errno_of(exc)
    if code is not None:
        message = f"{doing} failed: {errno.errorcode.get(code, code)} ({_strerror(code)})"
        return TransportError(ErrorRecord(err_code=code, message=message, component_signature="os"))
    message = f"{doing} failed: {exc}" if str(exc) else f"{doing} failed: the stream broke"
    return TransportError(
        ErrorRecord(
            err_code=ErrorCode.CONNECTION_BROKEN, message=message, component_signature="tcp"
        )
    )


def _send_timed_out(seconds: float) -> TransportError:
    return TransportError(
        ErrorRecord(
            err_code=ErrorCode.SEND_TIMEOUT,
            message=f"send did not complete within {seconds:g} s: the peer does not read",
            component_signature="tcp",
        )
    )


def _strerror(code: int) -> str:
    try:
        return os.strerror(code)
    except ValueError:  # pragma: no cover - every errno has a text on Linux
        return "unknown error"


class SendGate:
    """A FIFO lock that costs no scheduler pass when it is free.

    ``trio.Lock`` checkpoints on every acquire; sends already checkpoint inside
    ``send_all``, so a second pass per message would only add latency to every round trip.
    Ownership is handed straight to the next waiter on release, which keeps sends in the
    order they were made.
    """

    __slots__ = ("_held", "_lot")

    def __init__(self) -> None:
        self._held = False  # whether some task is inside a send
        self._lot = trio.lowlevel.ParkingLot()  # tasks waiting their turn, FIFO

    async def acquire(self) -> None:
        """Wait for the gate (without a checkpoint when it is free)."""
        if self._held:
            await self._lot.park()  # woken with ownership already handed over
        else:
            self._held = True

    def release(self) -> None:
        """Hand the gate to the next waiter, or open it."""
        if self._lot and self._lot.unpark():
            return
        self._held = False

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(self, *exc_info: object) -> None:
        self.release()


class Transport:
    """One connection's byte stream, with ordered sends and a bounded orderly close.

    The subclasses supply the four primitives (:meth:`_receive_some`, :meth:`_send_all`,
    :meth:`_shutdown_write`, :meth:`aclose`); this class adds the send gate, FIN once,
    and the orderly close.  Every primitive raises :class:`TransportError` only.

    Resource handling:
        The transport owns its stream or socket: :meth:`aclose` releases it, and is
        idempotent.
    """

    __slots__ = (
        "broken",
        "can_lend",
        "corked",
        "eof_received",
        "eof_sent",
        "gate",
        "on_send_wait",
        "pending",
        "receive_limit",
        "send_timeout",
        "waiting",
    )

    def __init__(self) -> None:
        self.gate = SendGate()  # serializes sends and FIN across tasks
        self.broken = False  # a failure was seen: no orderly close is possible
        self.eof_received = False  # the peer's FIN has been read
        self.eof_sent = False  # our FIN has been sent
        #: Seconds one send may wait for the peer to make room (``inf``: no limit).  Past
        #: it the send fails with :attr:`ErrorCode.SEND_TIMEOUT` and the transport is
        #: broken (part of the data may be out, so nothing more can follow it).
        self.send_timeout = math.inf
        #: While set, small sends are collected in :attr:`pending` instead of written;
        #: see :meth:`send_locked`.  The owner clears it and calls :meth:`flush` before
        #: it waits for anything.
        self.corked = False
        #: Bytes accepted by a corked send and not written yet; every write sends them
        #: first, so order is kept whoever writes next.
        self.pending = bytearray()
        #: The reader is waiting for the peer: sends are not corked meanwhile (nobody would
        #: flush them).
        self.waiting = False
        #: Called when a send has to wait for the peer to make room (only where
        #: :attr:`can_lend`): a connection that lent its reading takes it back then.
        self.on_send_wait: Callable[[], None] | None = None
        #: Whether a connection may lend its reading to an ``events()`` consumer
        #: (:mod:`trionet._channel`): only where a send that has to wait is seen, so that
        #: reading can come back to the network task then.
        self.can_lend = False
        #: The most one receive may return.  The socket transport reads RECEIVE_SIZE at a
        #: time, and up to this much while each read fills its buffer; others always read
        #: RECEIVE_SIZE.  TCP connections keep the default (4D's ``data`` events hold at
        #: most 64 KiB); WebSocket connections raise it to LARGE_RECEIVE_SIZE.
        self.receive_limit = RECEIVE_SIZE

    # -- primitives ----------------------------------------------------------------------

    async def _receive_some(self, missed: bool = False) -> bytes:
        raise NotImplementedError

    async def _send_all(self, data: bytes | bytearray | memoryview, head: bytes = b"") -> None:
        """Write ``head`` then ``data`` (without joining them where the transport can)."""
        raise NotImplementedError

    def receive_nowait(self) -> bytes | None:
        """The next chunk if one is there now (``b""`` at EOF), else ``None``; never waits.

        Transports that cannot tell without waiting always return ``None``.
        """
        return None

    async def _shutdown_write(self) -> None:
        """Send FIN (the socket transport does it without a scheduler pass of its own)."""
        raise NotImplementedError

    async def aclose(self) -> None:
        """Close now, without waiting (idempotent)."""
        raise NotImplementedError

    def set_no_delay(self, enabled: bool) -> None:
        """Set ``TCP_NODELAY`` where the transport is a TCP socket."""

    #: Whether :meth:`flush_nowait` can write without waiting (so corking is safe).
    can_cork = False

    def flush_nowait(self) -> None:
        """Write what is pending if it can be done now, without waiting (or do nothing).

        A connection calls this before its task gives up control while sends are
        corked, so that nothing it accepted waits for the task to come back.
        """

    def waits_at_once(self) -> bool:
        """Whether a receive that finds nothing will wait without looking again first.

        The socket transport says so once its second look has stopped paying (a peer
        that sends now and then): the next receive that finds the socket empty goes
        straight to trio's wait, which is itself a pass of the scheduler.
        """
        return False

    # -- shared behaviour --------------------------------------------------------------

    async def receive(self, *, missed: bool = False) -> bytes:
        """Return the next chunk of at most :attr:`receive_limit` bytes; ``b""`` at EOF.

        ``missed=True``: the caller has just found nothing with :meth:`receive_nowait`,
        so the socket transport skips its own first look (its second look, after a pass
        of the scheduler, still comes while it pays).
        """
        data = await self._receive_some(missed)
        if not data:
            self.eof_received = True
        return data

    async def receive_ready(self) -> bytes | None:
        """What :meth:`receive` would return at once (with its pass), or ``None``.

        ``None`` costs no pass of the scheduler: the caller learns that it is about to
        wait, and can let go of what it no longer needs first (a connection's last
        message, see trionet._wstask), then call ``receive(missed=True)``.
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        data = self.receive_nowait()
        if data is not None:
            await trio.lowlevel.cancel_shielded_checkpoint()
        return data

    async def send(self, data: bytes | bytearray | memoryview) -> None:
        """Send all of ``data`` after every send that started before it."""
        gate = self.gate
        # The usual case inlined: the gate is free and nothing is corked, so the data goes
        # to the wire with two coroutine frames fewer (each one is resumed at every pass
        # of the scheduler a send makes).
        if gate._held:
            await gate.acquire()
        else:
            gate._held = True
        try:
            if self.pending or self.corked:
                await self.send_locked(data)
            else:
                await self._send_all(data)
        finally:
            gate.release()

    async def send_locked(self, data: bytes | bytearray | memoryview, head: bytes = b"") -> None:
        """Send ``head`` and then ``data``; the caller holds :attr:`gate`.

        While :attr:`corked`, data that fits in :data:`CORK_LIMIT` with what is already
        pending is only appended to :attr:`pending` (no system call): a connection that
        answers many small messages from one received chunk then writes all the answers
        with one ``send``.

        Anything larger is not copied: what is pending and ``head`` (a frame header, say)
        go out in the same system call as ``data`` (``sendmsg`` on a socket), so that a
        1 MiB message is never joined to its header or to earlier answers.
        """
        pending = self.pending
        if self.corked and not self.waiting and len(pending) + len(head) + len(data) <= CORK_LIMIT:
            pending += head
            pending += data
            return
        if pending:
            # Cancelled before anything is written, the pending bytes stay for whoever
            # writes next (the closing handshake does): they were accepted already.
            await trio.lowlevel.checkpoint_if_cancelled()
            pending += head
            head = bytes(pending)
            pending.clear()
        await self._send_all(data, head)

    async def send_eager(self, data: bytes | bytearray | memoryview) -> None:
        """:meth:`send`, minus the pass of the scheduler when the socket takes it all now.

        For a write that the caller follows with a step that yields anyway (a handshake's
        answer is followed by the first read, a server's close frame by the close): the
        pass a send ends with would only delay that step.  Data the socket cannot take at
        once is sent as :meth:`send` would, after what was pending.
        """
        if not self.can_cork or self.gate._held or self.broken:
            await self.send(data)
            return
        self.pending += data
        self.flush_nowait()
        if self.pending:
            await self.flush()

    async def flush_before_receive(self) -> None:
        """:meth:`flush`, for a caller whose next step is a :meth:`receive`.

        The receive is a pass of the scheduler itself, so when it is going to wait
        (:meth:`waits_at_once`) the write's own pass would only delay the wait, at the
        price of one more turn of trio's run loop per message at low rates: what the
        socket takes at once is written without it.  Otherwise the pass stays, because it
        gives the peer time to answer before the receive looks.
        """
        if self.pending and self.waits_at_once():
            self.flush_nowait()
        await self.flush()

    async def flush(self) -> None:
        """Write what corked sends left in :attr:`pending` (kept if cancelled before)."""
        if self.pending:
            async with self.gate:
                if self.pending:
                    await trio.lowlevel.checkpoint_if_cancelled()
                    data = bytes(self.pending)
                    self.pending.clear()
                    await self._send_all(data)

    async def send_eof(self, last: bytes = b"") -> None:
        """Send ``last`` (if any) and FIN once, after every pending send.

        Sending the last bytes with the FIN costs one pass of the scheduler instead of two
        (a WebSocket server's close frame, for instance).
        """
        async with self.gate:
            sent = False
            if self.pending or last:
                await trio.lowlevel.checkpoint_if_cancelled()
                data = bytes(self.pending) + last
                self.pending.clear()
                await self._send_all(data)
                sent = True
            if not self.eof_sent:
                self.eof_sent = True
                await self._shutdown_write()
            if not sent:
                await trio.lowlevel.checkpoint()  # an async call always checkpoints

    async def close_orderly(self) -> None:
        """Flush, send FIN, read and discard until the peer's FIN, then close.

        Reading until the peer's FIN matters: closing a socket whose receive queue still
        holds data makes the kernel send RST instead of FIN, and an RST can destroy data
        the peer has not read yet.  The caller bounds the time this takes.
        """
        failures: list[TransportError] = []

        async def guarded(step: Callable[[], Awaitable[None]]) -> None:
            try:
                await step()
            except TransportError as exc:
                failures.append(exc)

        async with trio.open_nursery() as nursery:
            # Drain while waiting to send FIN: a send still in flight may only finish once
            # the peer can write to us again (an echoing peer, say).
            nursery.start_soon(guarded, self._drain)
            await guarded(self.send_eof)
        await self.aclose()
        if failures:
            raise failures[0]

    async def _drain(self) -> None:
        while not self.eof_received:
            await self.receive()


class StreamTransport(Transport):
    """A :class:`Transport` over any trio stream (the memory streams of tests, TLS, ...)."""

    __slots__ = ("stream",)

    def __init__(self, stream: trio.abc.Stream) -> None:
        super().__init__()
        self.stream = stream  # the byte stream this transport owns
        # A stream that says when a send waits (trionet.testing's memory streams do) lets
        # the connection lend its reading, as a socket does.
        if hasattr(stream, "on_send_wait"):
            stream.on_send_wait = self._send_waits
            self.can_lend = True

    def _send_waits(self) -> None:
        if self.on_send_wait is not None:
            self.on_send_wait()

    async def _receive_some(self, missed: bool = False) -> bytes:
        try:
            data = await self.stream.receive_some(RECEIVE_SIZE)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            self.broken = True
            raise _broken(exc, "receive") from exc
        return bytes(data) if type(data) is not bytes else data

    async def _send_all(self, data: bytes | bytearray | memoryview, head: bytes = b"") -> None:
        if head:
            data = head + data  # a stream has no gather write
        try:
            with trio.move_on_after(self.send_timeout) as scope:
                await self.stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            self.broken = True
            raise _broken(exc, "send") from exc
        if scope.cancelled_caught:
            self.broken = True
            raise _send_timed_out(self.send_timeout)

    async def _shutdown_write(self) -> None:
        if isinstance(self.stream, trio.abc.HalfCloseableStream):
            try:
                await self.stream.send_eof()
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                self.broken = True
                raise _broken(exc, "shutdown") from exc

    async def aclose(self) -> None:
        """Close the stream now, without waiting (idempotent)."""
        await trio.aclose_forcefully(self.stream)
