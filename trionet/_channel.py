"""The bounded event queue behind every ``events()`` channel.

One producer (a connection's network task) appends events; consumers take them through
:class:`EventChannel`, a trio ``ReceiveChannel``.  Two things set it apart from a plain
``trio.open_memory_channel``:

* **Taking an event that is already there costs no scheduler pass.**  A memory channel's
  ``receive()`` always yields to the scheduler, even when an item is waiting; a consumer that
  answers each event (an echo, a request/response protocol) then pays a full round of the
  run queue per event.  :meth:`EventChannel.receive` checks for cancellation and returns the
  waiting event at once; it only parks when the queue is empty.  Fairness is kept because
  a queue can only hold what the producer put there while the consumer was not running.
* **The producer never loses an event to cancellation.**  :meth:`EventQueue.put` appends
  unconditionally and the bound is applied afterwards, by :meth:`EventQueue.wait_room`: a
  producer cancelled while it waits for room has already handed its event over.

The bound is a count of events (``limit``); a producer checks :attr:`EventQueue.full`
after each put and waits while it holds.  Lifecycle events (``terminate``, ``error``) may
be put past the bound: they are at most a couple per connection, and holding them back
would only delay the end.

Lending the reading to the consumer
-----------------------------------
With a producer task reading the network and a consumer task answering, every message
costs two task steps where a handler callback costs one: the producer wakes for the
bytes, the consumer wakes for the event.  A queue given a ``pull`` function can save that
step.  When the producer's put wakes a consumer that was waiting for it, the consumer is
keeping up, and the producer lends it the reading (:meth:`~EventQueue.lend`): it parks, and a
consumer that finds the queue empty calls ``pull()`` itself, in its own task.  ``pull``
is the producer's read step (one receive, its events put here), so the order and content
of events do not change; only which task waits for the bytes does.

Reading comes back to the producer (:meth:`~EventQueue.take_back`) when ``pull`` meets
something only the producer handles (the end of input, a failure), when every channel is
closed, when the connection must end (the owner cancels the pull it is running), and when
a consumer's send has to wait for the peer: then the producer reads ahead into the queue,
as without lending, so that a peer that writes before it reads cannot dead-lock us.  While
reading is lent and no consumer asks, nothing is read: the bytes wait in the kernel and
TCP flow control holds the peer, as with a full queue.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import trio

__all__ = ["EventChannel", "EventQueue"]

E = TypeVar("E")


class EventQueue(Generic[E]):
    """A bounded FIFO of events from one producer to the consumers of its channels.

    Create the first :class:`EventChannel` right after the queue: events put while no
    channel is open are dropped (that is how a consumer that closed every end is handled).
    """

    __slots__ = (
        "_demand",
        "_finished",
        "_handles",
        "_items",
        "_lender",
        "_producer",
        "_pull",
        "_pulling",
        "_readers",
        "lent",
        "limit",
    )

    def __init__(self, limit: int, pull: Callable[[], Awaitable[None]] | None = None) -> None:
        self.limit = limit  # events held before the producer waits
        self._items: deque[E] = deque()  # events not taken yet, oldest first
        self._finished = False  # the producer is done: EndOfChannel once drained
        self._handles = 0  # open EventChannel handles; back to 0: nobody will read
        self._readers = trio.lowlevel.ParkingLot()  # consumers waiting for an event
        self._producer = trio.lowlevel.ParkingLot()  # the producer waiting for room
        # Lending (see the module's docstring): the producer's read step, run by a
        # consumer; whether reading is lent now; whether a consumer runs pull() now;
        # whether a put woke a waiting consumer since the producer last looked; and the
        # producer waiting for reading to come back.
        self._pull = pull
        self.lent = False
        self._pulling = False
        self._demand = False
        self._lender = trio.lowlevel.ParkingLot()

    # -- producer side --------------------------------------------------------------------

    def put(self, event: E) -> None:
        """Append ``event`` (never blocks); a consumer waiting for one is woken.

        An event for a queue whose every channel was closed is dropped: nobody will ever
        read it, and keeping it would only hold memory.
        """
        if self._handles == 0:
            return
        self._items.append(event)
        if self._readers:
            self._readers.unpark()
            self._demand = True

    @property
    def lendable(self) -> bool:
        """Whether a consumer is keeping up, so the producer should :meth:`lend` reading.

        True once a put has woken a consumer that was waiting for it (and reading can be
        lent at all: the queue has a ``pull`` and someone reads it).
        """
        return self._demand and self._pull is not None and self._handles != 0

    async def lend(self, duty: Callable[[], Awaitable[None]] | None = None) -> None:
        """Let consumers read (with ``pull``) until reading comes back; the producer's wait.

        ``duty`` runs in the producer each time :meth:`poke` wakes it while reading is lent
        (the WebSocket connection flushes corked answers there).  Cancelling the wait (the
        connection must end) takes reading back too; the owner must also cancel a ``pull``
        in progress, so that it stops waiting on the network.
        """
        self._demand = False
        self.lent = True
        if self._readers:  # a consumer is already waiting: it becomes the reader
            self._readers.unpark()
        try:
            while self.lent or self._pulling:
                await self._lender.park()
                if duty is not None and self.lent:
                    await duty()
        finally:
            self.lent = False

    def poke(self) -> None:
        """Wake a producer that lent its reading, to run its ``duty`` (reading stays lent)."""
        if self.lent and self._lender:  # not woken already
            self._lender.unpark_all()

    def take_back(self) -> None:
        """Reading goes back to the producer (callable from any task, idempotent)."""
        if self.lent:
            self.lent = False
            if not self._pulling:
                self._lender.unpark_all()

    @property
    def full(self) -> bool:
        """Whether the producer should wait before putting more."""
        return len(self._items) >= self.limit and self._handles != 0

    def __len__(self) -> int:
        return len(self._items)

    async def wait_room(self) -> None:
        """Wait until the queue is below its limit, or nobody reads it any more."""
        while self.full:
            await self._producer.park()

    def finish(self) -> None:
        """No event will follow: consumers see ``EndOfChannel`` once they took the rest."""
        self._finished = True
        self._readers.unpark_all()

    # -- consumer side --------------------------------------------------------------------

    def _take(self) -> E:
        item = self._items.popleft()
        if self._producer and len(self._items) < self.limit:
            self._producer.unpark()
        return item

    def _attach(self) -> None:
        self._handles += 1

    async def _wait(self) -> None:
        """A consumer's wait for an event: read with ``pull`` when reading is lent."""
        if self.lent and not self._pulling:
            assert self._pull is not None
            self._pulling = True
            try:
                await self._pull()
            finally:
                self._pulling = False
                if not self.lent:  # taken back while we read: the producer may go on
                    self._lender.unpark_all()
        else:
            await self._readers.park()

    def _detach(self) -> None:
        self._handles -= 1
        if self._handles == 0:
            self._items.clear()
            self._producer.unpark_all()
            self._readers.unpark_all()
            self.take_back()


class EventChannel(trio.abc.ReceiveChannel[E], Generic[E]):
    """What ``events()`` returns: a trio ``ReceiveChannel`` over an :class:`EventQueue`.

    It has ``async for``, ``receive()``, ``receive_nowait()``, ``clone()`` (each event goes
    to one of the clones) and ``aclose()``, like a memory channel.  ``receive()`` returns a
    waiting event without a scheduler pass (it still raises ``Cancelled`` when cancelled).

    A connection may also ask to hear when the consumer comes back for more after a given
    event type (``marker``): TCP uses that to know the consumer is done with ``close``.
    """

    __slots__ = ("_closed", "_marker", "_on_demand", "_past_marker", "_queue")

    def __init__(
        self,
        queue: EventQueue[E],
        marker: object = None,
        on_demand: Callable[[], None] | None = None,
    ) -> None:
        self._queue = queue  # the queue this handle reads
        self._marker = marker  # the event type after which demand is reported
        self._on_demand = on_demand  # called when the consumer asks past the marker
        self._past_marker = False  # the marker event was handed out by this handle
        self._closed = False  # aclose()/close() was called on this handle
        queue._attach()

    def _note(self, event: E) -> E:
        if self._marker is not None and getattr(event, "type", None) is self._marker:
            self._past_marker = True
        return event

    def receive_nowait(self) -> E:
        """Return the next event if one is ready.

        Raises:
            trio.WouldBlock: no event is ready.
            trio.EndOfChannel: the connection has terminated and every event was received.
            trio.ClosedResourceError: this channel was closed.
        """
        if self._closed:
            raise trio.ClosedResourceError("this events() channel was closed")
        if self._past_marker and self._on_demand is not None:
            self._on_demand()
        queue = self._queue
        if queue._items:
            return self._note(queue._take())
        if queue._finished:
            raise trio.EndOfChannel
        raise trio.WouldBlock

    async def receive(self) -> E:
        """Return the next event, waiting for one if none is there.

        Raises:
            trio.EndOfChannel: the connection has terminated and every event was received.
            trio.ClosedResourceError: this channel was closed.
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        while True:
            try:
                return self.receive_nowait()
            except trio.WouldBlock:
                pass  # wait outside the handler, which would keep the exception alive
            await self._queue._wait()

    async def __anext__(self) -> E:
        """The next event for ``async for`` (one coroutine less per event than the default)."""
        await trio.lowlevel.checkpoint_if_cancelled()
        queue = self._queue
        items = queue._items
        if items and self._on_demand is None and not self._closed:
            # The common case, inlined: an event is waiting (see receive_nowait).
            item = items.popleft()
            if queue._producer and len(items) < queue.limit:
                queue._producer.unpark()
            return item
        while True:
            try:
                return self.receive_nowait()
            except trio.WouldBlock:
                pass  # as in receive
            except trio.EndOfChannel:
                raise StopAsyncIteration from None
            await self._queue._wait()

    def clone(self) -> EventChannel[E]:
        """Another receiving end on the same events (each event goes to one of them).

        Raises:
            trio.ClosedResourceError: this channel was closed.
        """
        if self._closed:
            raise trio.ClosedResourceError("this events() channel was closed")
        return EventChannel(self._queue, self._marker, self._on_demand)

    def close(self) -> None:
        """Close this end at once (idempotent); with every end closed, events are dropped."""
        if not self._closed:
            self._closed = True
            self._queue._detach()
        if self._on_demand is not None:
            self._on_demand()

    async def aclose(self) -> None:
        """Close this end."""
        self.close()
        await trio.lowlevel.checkpoint()

    def statistics(self) -> dict[str, int]:
        """How many events wait, and the bound."""
        return {"current_buffer_used": len(self._queue), "max_buffer_size": self._queue.limit}
