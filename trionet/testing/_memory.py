"""In-memory byte streams with TCP's shape and injectable faults."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable

import trio

__all__ = ["MemoryTCPStream", "memory_stream_pair"]

# Default capacity of each direction, in bytes.
#
# A real socket pair buffers a few hundred KiB between two processes; a small in-memory
# buffer makes backpressure show up after little data, which is what tests want to see.
DEFAULT_CAPACITY = 64 * 1024

_ports = itertools.count(40000)


class _Pipe:
    """One direction of a memory connection: a bounded byte buffer with EOF and reset."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity  # bytes buffered before writers wait
        self.buffer = bytearray()  # bytes written, not read yet
        self.eof = False  # the writer sent FIN
        self.broken = False  # the connection was reset
        self.changed = trio.lowlevel.ParkingLot()  # readers and writers wait for a change

    def wake(self) -> None:
        self.changed.unpark_all()


class _Link:
    """What both ends of a memory connection share: the two pipes and the fault state."""

    def __init__(self, capacity: int) -> None:
        self.pipes = (_Pipe(capacity), _Pipe(capacity))
        self.vanished = False  # the network dropped everything: no data, no FIN, no RST

    def reset(self) -> None:
        for pipe in self.pipes:
            pipe.broken = True
            pipe.wake()


class MemoryTCPStream(trio.abc.HalfCloseableStream):
    """One end of an in-memory TCP-like connection, with fault injection.

    Behaves like a connected socket stream: bounded buffers (so a reader that stops makes
    the writer wait), ``send_eof`` for a half-close, and ``BrokenResourceError`` after a
    reset.  Create pairs with :func:`memory_stream_pair`.

    Fault controls (call them from the test, any time):

    * :meth:`reset` — both ends fail as on a TCP RST;
    * :meth:`vanish` — the peer disappears silently: sends are swallowed, nothing more
      arrives, no FIN (only timeouts end such a connection);
    * :meth:`stall` / :meth:`resume` — this end stops reading (its peer's sends then block
      once the buffer is full), and starts again;
    * :attr:`send_delay` / :attr:`receive_delay` — seconds each operation waits first (use
      trio's ``MockClock`` to keep tests instant);
    * :attr:`max_chunk` — receives return at most this many bytes; with ``rng`` set, a
      random size from 1 to ``max_chunk``, to fragment data as TCP may.

    Attributes:
        remote_address: The ``(ip, port)`` this end reports for its peer.
    """

    def __init__(
        self,
        link: _Link,
        outgoing: _Pipe,
        incoming: _Pipe,
        remote_address: tuple[str, int],
        rng: random.Random | None,
    ) -> None:
        self._link = link
        self._out = outgoing  # the pipe we write to
        self._in = incoming  # the pipe we read from
        self._closed = False  # aclose() was called on this end
        self._stalled = trio.Event()  # unset while stalled
        self._stalled.set()
        self.remote_address = remote_address
        self.rng = rng  # randomizes chunk sizes when max_chunk is set
        self.send_delay = 0.0  # seconds each send_all waits first
        self.receive_delay = 0.0  # seconds each receive_some waits first
        self.max_chunk: int | None = None  # cap on the bytes one receive returns
        self.bytes_sent = 0  # total accepted by send_all
        self.bytes_received = 0  # total returned by receive_some
        #: Called when a send is about to wait (a full buffer, a send delay), as a socket
        #: send that would block; trionet's transport uses it to know when a consumer's
        #: send waits for the peer (it then takes back the reading it lent).
        self.on_send_wait: Callable[[], None] | None = None

    def _send_waits(self) -> None:
        if self.on_send_wait is not None:
            self.on_send_wait()

    # -- faults -------------------------------------------------------------------------

    def reset(self) -> None:
        """Fail both ends now, as a TCP reset would."""
        self._link.reset()

    def vanish(self) -> None:
        """Make the peer disappear: no more data, FIN or reset either way."""
        self._link.vanished = True
        for pipe in self._link.pipes:
            pipe.wake()

    def stall(self) -> None:
        """Stop reading on this end until :meth:`resume`."""
        self._stalled = trio.Event()

    def resume(self) -> None:
        """Read again after :meth:`stall`."""
        self._stalled.set()
        self._in.wake()

    # -- the Stream interface -----------------------------------------------------------

    def _check(self, pipe: _Pipe) -> None:
        if self._closed:
            raise trio.ClosedResourceError("this memory stream was closed")
        if pipe.broken:
            raise trio.BrokenResourceError("connection reset by peer")

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Write all of ``data``, waiting while the peer's buffer is full."""
        if self.send_delay:
            self._send_waits()
            await trio.sleep(self.send_delay)
        pipe = self._out
        self._check(pipe)
        if pipe.eof:
            raise trio.ClosedResourceError("send_eof() was called on this stream")
        view = memoryview(bytes(data))
        await trio.lowlevel.checkpoint_if_cancelled()
        while view:
            self._check(pipe)
            if self._link.vanished:
                break
            room = pipe.capacity - len(pipe.buffer)
            if room <= 0:
                self._send_waits()
                await pipe.changed.park()
                continue
            pipe.buffer += view[:room]
            view = view[room:]
            pipe.wake()
        self.bytes_sent += len(data)
        await trio.lowlevel.cancel_shielded_checkpoint()

    async def wait_send_all_might_not_block(self) -> None:
        """Wait until the peer's buffer has room."""
        pipe = self._out
        while len(pipe.buffer) >= pipe.capacity and not pipe.broken and not self._closed:
            await pipe.changed.park()
        await trio.lowlevel.checkpoint()

    async def send_eof(self) -> None:
        """Half-close: the peer reads EOF after the bytes already sent (idempotent)."""
        if self._out.eof and not self._closed:
            await trio.lowlevel.checkpoint()
            return
        self._check(self._out)
        if not self._link.vanished:
            self._out.eof = True
            self._out.wake()
        await trio.lowlevel.checkpoint()

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        """Return some bytes (at most ``max_bytes``), or ``b""`` once the peer sent EOF."""
        if self.receive_delay:
            await trio.sleep(self.receive_delay)
        pipe = self._in
        await trio.lowlevel.checkpoint_if_cancelled()
        while True:
            if not self._stalled.is_set():
                # Also holds a receive that was already waiting when stall() was called.
                await self._stalled.wait()
                continue
            self._check(pipe)
            if pipe.buffer and not self._link.vanished:
                break
            if pipe.eof and not self._link.vanished:
                await trio.lowlevel.cancel_shielded_checkpoint()
                return b""
            await pipe.changed.park()
        limit = len(pipe.buffer) if max_bytes is None else max_bytes
        if self.max_chunk is not None:
            cap = self.rng.randint(1, self.max_chunk) if self.rng else self.max_chunk
            limit = min(limit, cap)
        data = bytes(pipe.buffer[:limit])
        del pipe.buffer[:limit]
        pipe.wake()
        self.bytes_received += len(data)
        await trio.lowlevel.cancel_shielded_checkpoint()
        return data

    async def aclose(self) -> None:
        """Close this end; the peer reads EOF (unless the link vanished)."""
        if not self._closed:
            self._closed = True
            if not self._link.vanished:
                self._out.eof = True
            if not self._link.vanished:
                # Unread incoming data at close is what makes a real socket send RST.
                if self._in.buffer:
                    self._out.broken = True
                # Like a closed socket, later sends from the peer are refused.
                self._in.broken = True
            self._out.wake()
            self._in.wake()
        await trio.lowlevel.checkpoint()


def memory_stream_pair(
    *,
    capacity: int = DEFAULT_CAPACITY,
    seed: int | None = None,
    addresses: tuple[tuple[str, int], tuple[str, int]] | None = None,
) -> tuple[MemoryTCPStream, MemoryTCPStream]:
    """Two connected :class:`MemoryTCPStream` ends, like a connected socket pair.

    Args:
        capacity: Bytes each direction buffers before the writer waits.
        seed: Seeds each end's ``rng`` (used with ``max_chunk``) for repeatable runs.
        addresses: The ``(ip, port)`` of each end; each end's ``remote_address`` is the
            other's.  By default ``127.0.0.1`` with distinct made-up ports.

    Raises:
        ValueError: ``capacity`` is not positive.
    """
    if isinstance(capacity, bool) or not isinstance(capacity, int):
        raise TypeError(f"capacity must be an int, not {type(capacity).__name__}")
    if capacity <= 0:
        raise ValueError(f"capacity must be positive, got {capacity}")
    if addresses is None:
        addresses = (("127.0.0.1", next(_ports)), ("127.0.0.1", next(_ports)))
    link = _Link(capacity)
    a_to_b, b_to_a = link.pipes
    rng_a = random.Random(seed) if seed is not None else None
    rng_b = random.Random(seed + 1) if seed is not None else None
    a = MemoryTCPStream(link, a_to_b, b_to_a, addresses[1], rng_a)
    b = MemoryTCPStream(link, b_to_a, a_to_b, addresses[0], rng_b)
    return a, b
