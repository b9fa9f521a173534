"""A connection's side of lent reading (see :mod:`trionet._channel`): shared by TCP and WebSocket.

The queue decides *when* reading is lent and who may read; this is what a connection
does around it.  Its network task lends the reading and gets back what the consumer could
not handle (:meth:`LentReading.lend`); the consumer's read step receives through
:meth:`LentReading.receive`; and when the connection must end, :meth:`LentReading.reclaim`
takes the reading back and stops a read in progress.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import trio

from ._channel import EventQueue
from ._transport import Transport, TransportError

__all__ = ["LentReading"]


class LentReading:
    """The lending state of one connection with an ``events()`` queue."""

    __slots__ = ("_handed_back", "_scope", "queue")

    def __init__(self, queue: EventQueue[Any]) -> None:
        self.queue = queue  # the connection's events() queue, created with its pull
        self._scope: trio.CancelScope | None = None  # a consumer's read in progress
        self._handed_back: object = None  # what that read met that the network task handles

    def start(self, transport: Transport) -> bool:
        """Whether reading can be lent on ``transport``; if so, a waiting send takes it back."""
        if not transport.can_lend:
            return False
        transport.on_send_wait = self.queue.take_back
        return True

    async def lend(self, duty: Callable[[], Awaitable[None]] | None = None) -> object:
        """The network task's wait while the consumer reads: what it handed back, or ``None``.

        ``None`` means the reading came back with nothing to handle (a waiting send, the
        channels closed); otherwise the result is the ``b""`` of the peer's FIN or what
        the connection's read step handed back.

        Raises:
            TransportError: the consumer's read failed; the network task handles it as
                if its own read had.
        """
        await self.queue.lend(duty)
        handed_back, self._handed_back = self._handed_back, None
        if isinstance(handed_back, TransportError):
            raise handed_back
        return handed_back

    def hand_back(self, what: object) -> None:
        """From the consumer's read step: the network task takes over and handles ``what``."""
        self._handed_back = what
        self.queue.take_back()

    async def receive(self, transport: Transport) -> bytes | None:
        """The consumer's receive on behalf of the network task.

        Corked answers go out first (the peer may be waiting for them).  Returns the bytes
        to deliver, or ``None``: the read was stopped by :meth:`reclaim`, or it met the FIN
        or a failure, which are handed back.
        """
        try:
            # Under load the corked answers fit in the socket and the peer's next bytes
            # are there, at once or after one pass of the scheduler (the time the peer
            # takes to answer what was just flushed): then no cancel scope is needed (it
            # costs more than the read), only the pass every read makes.
            data = None
            if transport.pending:
                transport.flush_nowait()
            if not transport.pending:
                data = transport.receive_nowait()
                if data is None:
                    await trio.lowlevel.checkpoint()
                    if not self.queue.lent:
                        return None  # taken back meanwhile: the network task reads
                    data = transport.receive_nowait()
                else:
                    await trio.lowlevel.cancel_shielded_checkpoint()
            if data is None:
                with trio.CancelScope() as scope:
                    self._scope = scope
                    try:
                        if transport.pending:
                            await transport.flush()
                        # One more look after one more pass, while that pays, is the
                        # transport's: waiting at once here measured slower under load
                        # (events() at 0.87-0.91x the handler style on ws_small_c50,
                        # against 1.02-1.08x with it).
                        data = await transport.receive(missed=True)
                    finally:
                        self._scope = None
                if scope.cancelled_caught:
                    return None
        except TransportError as exc:
            self.hand_back(exc)
            return None
        if not data:
            self.hand_back(data)
            return None
        return data

    def reclaim(self) -> None:
        """The connection must end: reading comes back and a read in progress stops."""
        self.queue.take_back()
        if self._scope is not None:
            self._scope.cancel()
