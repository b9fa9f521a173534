"""Our load clients: plain non-blocking sockets driven by :mod:`selectors`, one process.

TCP here (throughput and round trips); WebSocket in :mod:`loadclient_ws`.  Each client
does as little Python work per message as it can (one ``recv``, one comparison, one
``send`` per read), checks every echo, and measures its own CPU use, so that a saturated
client shows in the report.  Every loop has a deadline.
"""

from __future__ import annotations

import selectors
import socket
import time
from collections.abc import Callable

from measure import (
    CONNECT_TIMEOUT,
    DRAIN_TIMEOUT,
    HOST,
    POLL_INTERVAL,
    STALL_TIMEOUT,
    BenchmarkError,
    Sample,
    ServerProcess,
    Window,
)

CHUNK = 64 * 1024  # bytes per send() of the throughput client
WINDOW = 8 * CHUNK  # most bytes the throughput client has in flight
PATTERN_PERIOD = 251  # the throughput payload repeats with this (prime) period
CHECK_BYTES = 16  # how many bytes of every received block the throughput client checks
RT_CONNECTIONS = 50  # concurrent connections of the round-trip workload
RT_SIZE = 64  # bytes per round-trip request (and response)


def connect(port: int) -> socket.socket:
    """A non-blocking, TCP_NODELAY client socket connected to the server on ``port``."""
    sock = socket.create_connection((HOST, port), timeout=CONNECT_TIMEOUT)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setblocking(False)
    return sock


def window_for(server: ServerProcess) -> Window:
    """A measurement window accounting the server's and the client core's CPU."""
    return Window(server.process.pid, server.client_core)


# -- throughput --------------------------------------------------------------------------


def measure_throughput(server: ServerProcess, warmup: float, duration: float) -> Sample:
    """One connection streaming 64 KiB chunks through the echo; the rate is in bytes/s.

    The payload repeats with a prime period, so the first bytes of every received block
    can be checked against their stream offset (a lost, duplicated or reordered block
    shows); by the end every sent byte must have come back.

    Raises:
        BenchmarkError: the server stalled, closed the connection or echoed wrong data.
    """
    pattern = bytes(range(PATTERN_PERIOD))
    source = memoryview(pattern * (CHUNK // PATTERN_PERIOD + 2))
    buffer = bytearray(WINDOW)
    sent = received = 0
    with connect(server.port) as sock, selectors.DefaultSelector() as selector:
        selector.register(sock, selectors.EVENT_READ)
        send, recv_into = sock.send, sock.recv_into
        window = window_for(server)
        start = time.perf_counter()
        measure_at, stop_at = start + warmup, start + warmup + duration
        measuring = False
        want_write = False  # registered for EVENT_WRITE after the kernel refused a send
        last_progress = start
        while True:
            now = time.perf_counter()
            if not measuring and now >= measure_at:
                window.open(now, received)
                measuring = True
            elif measuring and now >= stop_at:
                sample = window.close(now, received)
                break
            if now - last_progress > STALL_TIMEOUT:
                raise BenchmarkError(f"throughput: no echo for {STALL_TIMEOUT:g} s")
            if not want_write and sent - received <= WINDOW - CHUNK:
                offset = sent % PATTERN_PERIOD
                try:
                    sent += send(source[offset : offset + CHUNK])
                except BlockingIOError:
                    want_write = True
                    selector.modify(sock, selectors.EVENT_READ | selectors.EVENT_WRITE)
                continue
            for _key, mask in selector.select(POLL_INTERVAL):
                if mask & selectors.EVENT_WRITE:
                    want_write = False
                    selector.modify(sock, selectors.EVENT_READ)
                if mask & selectors.EVENT_READ:
                    received = _receive_block(recv_into, buffer, source, received)
                    last_progress = now
        # Stop sending; everything in flight must come back.
        deadline = time.perf_counter() + DRAIN_TIMEOUT
        while received < sent:
            if time.perf_counter() > deadline:
                raise BenchmarkError(
                    f"throughput: {sent - received} of {sent} bytes not echoed "
                    f"within {DRAIN_TIMEOUT:g} s"
                )
            if selector.select(POLL_INTERVAL):
                received = _receive_block(recv_into, buffer, source, received)
        if received != sent:  # pragma: no cover - only a server echoing extra bytes
            raise BenchmarkError(f"throughput: sent {sent} bytes, received {received}")
    return sample


def _receive_block(
    recv_into: Callable[[bytearray], int], buffer: bytearray, source: memoryview, received: int
) -> int:
    """Receive one block, check its first bytes against the stream offset; new total."""
    count = recv_into(buffer)
    if not count:
        raise BenchmarkError(f"throughput: server closed the connection after {received} bytes")
    offset = received % PATTERN_PERIOD
    checked = min(count, CHECK_BYTES)
    if buffer[:checked] != source[offset : offset + checked]:
        raise BenchmarkError(f"throughput: wrong bytes echoed at offset {received}")
    return received + count


# -- round trips -------------------------------------------------------------------------


class _Exchange:
    """One round-trip connection: the request in flight and what has come back of it."""

    __slots__ = ("head", "partial", "request", "sequence", "sock", "unsent")

    def __init__(self, sock: socket.socket, index: int) -> None:
        self.sock = sock
        self.head = f"connection {index:4d} request ".encode()  # 8 bytes follow
        self.head += b"." * (RT_SIZE - 8 - len(self.head))
        self.sequence = 0
        self.request = b""
        self.partial = b""  # the response so far, when it arrived in pieces
        self.unsent = b""  # the end of the request the kernel did not take yet

    def next_request(self) -> bytes:
        self.sequence += 1
        self.request = self.head + self.sequence.to_bytes(8, "big")
        return self.request


def measure_round_trips(server: ServerProcess, warmup: float, duration: float) -> Sample:
    """:data:`RT_CONNECTIONS` connections doing request, full response, next request.

    Every response must equal its request, which carries the connection and a counter.
    The rate is in round trips per second, over all connections.

    Raises:
        BenchmarkError: the server stalled, closed a connection or echoed wrong data.
    """
    selector = selectors.DefaultSelector()
    exchanges: list[_Exchange] = []
    try:
        for index in range(RT_CONNECTIONS):
            exchange = _Exchange(connect(server.port), index)
            exchanges.append(exchange)
            selector.register(exchange.sock, selectors.EVENT_READ, exchange)
        return _drive_round_trips(server, selector, exchanges, warmup, duration)
    finally:
        selector.close()
        for exchange in exchanges:
            exchange.sock.close()


def _drive_round_trips(
    server: ServerProcess,
    selector: selectors.BaseSelector,
    exchanges: list[_Exchange],
    warmup: float,
    duration: float,
) -> Sample:
    read, read_write = selectors.EVENT_READ, selectors.EVENT_READ | selectors.EVENT_WRITE
    completed = 0
    in_flight = 0

    def send(exchange: _Exchange, data: bytes) -> None:
        sent = exchange.sock.send(data)
        if sent < len(data):  # never seen with 64 bytes, but handled
            exchange.unsent = data[sent:]
            selector.modify(exchange.sock, read_write, exchange)

    for exchange in exchanges:
        send(exchange, exchange.next_request())
        in_flight += 1
    window = window_for(server)
    start = time.perf_counter()
    measure_at, stop_at = start + warmup, start + warmup + duration
    measuring = False
    sample: Sample | None = None
    last_progress = start
    while in_flight:
        now = time.perf_counter()
        if sample is None:
            if not measuring and now >= measure_at:
                window.open(now, completed)
                measuring = True
            elif measuring and now >= stop_at:
                # Measured; stop issuing requests and collect the ones in flight.
                sample = window.close(now, completed)
                last_progress = now
        if now - last_progress > (STALL_TIMEOUT if sample is None else DRAIN_TIMEOUT):
            raise BenchmarkError(f"round trips: {in_flight} responses missing for too long")
        for key, mask in selector.select(POLL_INTERVAL):
            exchange = key.data
            if mask & selectors.EVENT_WRITE:
                data, exchange.unsent = exchange.unsent, b""
                selector.modify(exchange.sock, read, exchange)
                send(exchange, data)
            if not mask & selectors.EVENT_READ:
                continue
            response = exchange.sock.recv(RT_SIZE - len(exchange.partial))
            if not response:
                raise BenchmarkError("round trips: server closed a connection")
            if exchange.partial or len(response) < RT_SIZE:
                exchange.partial += response
                if len(exchange.partial) < RT_SIZE:
                    continue
                response, exchange.partial = exchange.partial, b""
            if response != exchange.request:
                raise BenchmarkError(
                    f"round trips: expected {exchange.request!r}, got {response!r}"
                )
            completed += 1
            last_progress = now
            if sample is None:
                send(exchange, exchange.next_request())
            else:
                in_flight -= 1
    assert sample is not None
    return sample
