"""WebSocket load client: hand-written RFC 6455 framing over non-blocking sockets and epoll.

One process, one thread.  Client frames are masked, as RFC 6455 requires, with random keys:
a few pre-masked copies of each message (16 of the small one, 4 of the 1 MiB one) are built
once and sent in rotation, so the client does not mask in Python per message.  The
server's frames are unmasked and so predictable: the client compares what it receives with
the byte stream it expects (every byte for small messages, the first bytes of every read
for large ones, and the total count at the end), which costs one comparison per read
instead of a frame parser.  This relies on servers sending each echo as one unfragmented
frame with the shortest length encoding, which every server benchmarked here does.

All replies that one read makes possible go out with one ``send``.  Every loop is bounded
by deadlines (a stalled server raises :class:`~measure.BenchmarkError`).
"""

from __future__ import annotations

import base64
import hashlib
import os
import select
import socket
import time
from collections.abc import Callable

from loadclient import connect, window_for
from measure import (
    CONNECT_TIMEOUT,
    DRAIN_TIMEOUT,
    HOST,
    POLL_INTERVAL,
    STALL_TIMEOUT,
    BenchmarkError,
    Sample,
    ServerProcess,
)

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
CHECK_BYTES = 16  # bytes of every large-message read compared with the expected stream
LATE_CLOSE = 1.0  # seconds the handshake client waits for the server to close TCP first
IN, OUT = select.EPOLLIN, select.EPOLLIN | select.EPOLLOUT


def mask(payload: bytes, key: bytes) -> bytes:
    """``payload`` XORed with the 4-byte ``key`` repeated (RFC 6455 section 5.3)."""
    n = len(payload)
    stream = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(stream, "little")).to_bytes(
        n, "little"
    )


def _length_header(first: int, n: int, masked: int) -> bytes:
    if n < 126:
        return bytes([first, masked | n])
    if n < 65536:
        return bytes([first, masked | 126]) + n.to_bytes(2, "big")
    return bytes([first, masked | 127]) + n.to_bytes(8, "big")


def client_frame(opcode: int, payload: bytes) -> bytes:
    """A final, masked client frame with a fresh random key."""
    key = os.urandom(4)
    return _length_header(0x80 | opcode, len(payload), 0x80) + key + mask(payload, key)


def server_frame(opcode: int, payload: bytes) -> bytes:
    """The unmasked frame a server sends for ``payload`` (shortest length encoding)."""
    return _length_header(0x80 | opcode, len(payload), 0) + payload


def handshake_request(port: int) -> tuple[bytes, bytes]:
    """An upgrade request with a random key, and the ``Sec-WebSocket-Accept`` it expects."""
    key = base64.b64encode(os.urandom(16))
    accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
    request = (
        b"GET / HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ) % (HOST.encode(), port, key)
    return request, accept


def check_response(head: bytes, accept: bytes) -> None:
    """Raise unless ``head`` is a 101 response carrying ``accept``."""
    if not head.startswith(b"HTTP/1.1 101") or accept not in head:
        raise BenchmarkError(f"handshake refused: {head[:200]!r}")


def open_websocket(port: int) -> socket.socket:
    """A connected, upgraded, non-blocking WebSocket client socket (blocking setup)."""
    sock = connect(port)
    sock.setblocking(True)
    sock.settimeout(CONNECT_TIMEOUT)
    request, accept = handshake_request(port)
    sock.sendall(request)
    head = b""
    while b"\r\n\r\n" not in head:
        data = sock.recv(4096)
        if not data or len(head) > 65536:
            raise BenchmarkError("handshake: no complete response")
        head += data
    head, _, rest = head.partition(b"\r\n\r\n")
    check_response(head, accept)
    if rest:
        raise BenchmarkError(f"handshake: unexpected bytes after the response: {rest[:50]!r}")
    sock.setblocking(False)
    return sock


def _repeat(block: bytes, length: int) -> bytes:
    """``block`` repeated until at least ``length`` bytes long."""
    return block * (length // len(block) + 1)


def _poller() -> tuple[select.epoll, Callable[[float], list[tuple[int, int]]]]:
    poller = select.epoll()
    return poller, poller.poll


class _Conn:
    __slots__ = ("fd", "recv_pos", "send_limit", "send_pos", "sock", "writing")

    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.fd = sock, sock.fileno()
        self.send_pos = self.send_limit = self.recv_pos = 0
        self.writing = False


def measure_echo(
    server: ServerProcess,
    warmup: float,
    duration: float,
    *,
    connections: int,
    in_flight: int,
    payloads: list[bytes],
    opcode: int,
    unit: int = 1,
) -> Sample:
    """``connections`` connections, each keeping ``in_flight`` echoes outstanding.

    ``payloads`` (all the same size) are sent in rotation; the rate counts ``unit`` per
    echoed message (1: messages per second; the payload size: bytes per second).

    Raises:
        BenchmarkError: a server stalled, closed a connection or echoed wrong data.
    """
    size = len(payloads[0])
    send_period = b"".join(client_frame(opcode, p) for p in payloads)
    recv_period = b"".join(server_frame(opcode, p) for p in payloads)
    fc, fs = len(send_period) // len(payloads), len(recv_period) // len(payloads)
    sp, rp = len(send_period), len(recv_period)
    small = size < 4096
    read_size = 65536 if small else 262144
    send_buf = memoryview(send_period * 2)
    expected = _repeat(recv_period, rp + read_size)
    buffer = bytearray(read_size)
    poller, poll = _poller()
    conns: dict[int, _Conn] = {}
    try:
        for _ in range(connections):
            conn = _Conn(open_websocket(server.port))
            conns[conn.fd] = conn
            poller.register(conn.fd, IN)

        def flush(c: _Conn) -> None:
            offset = c.send_pos % sp
            try:  # noqa: SIM105 - suppress() would cost a frame per send
                c.send_pos += c.sock.send(
                    send_buf[offset : offset + min(c.send_limit - c.send_pos, sp)]
                )
            except BlockingIOError:
                pass
            if c.send_pos < c.send_limit:
                if not c.writing:
                    c.writing = True
                    poller.modify(c.fd, OUT)
            elif c.writing:
                c.writing = False
                poller.modify(c.fd, IN)

        for c in conns.values():
            c.send_limit = in_flight * fc
            flush(c)
        completed = 0
        sending = True
        window = window_for(server)
        start = time.perf_counter()
        measure_at, stop_at = start + warmup, start + warmup + duration
        measuring = False
        sample: Sample | None = None
        last_progress = start
        while True:
            now = time.perf_counter()
            if sample is None:
                if not measuring and now >= measure_at:
                    window.open(now, completed * unit)
                    measuring = True
                elif measuring and now >= stop_at:
                    sample = window.close(now, completed * unit)
                    sending, last_progress = False, now
                    for c in conns.values():  # finish the frame being sent, send no more
                        c.send_limit = -(-c.send_pos // fc) * fc
            elif all(c.recv_pos == c.send_limit // fc * fs for c in conns.values()):
                _close_politely(poller, conns)
                return sample
            if now - last_progress > (STALL_TIMEOUT if sending else DRAIN_TIMEOUT):
                raise BenchmarkError(f"echo: no progress for {STALL_TIMEOUT:g} s")
            for fd, events in poll(POLL_INTERVAL):
                c = conns[fd]
                if events & select.EPOLLOUT:
                    flush(c)
                if not events & (select.EPOLLIN | select.EPOLLHUP | select.EPOLLERR):
                    continue
                offset = c.recv_pos % rp
                if small:
                    data = c.sock.recv(read_size)
                    n = len(data)
                    if data != expected[offset : offset + n]:
                        raise BenchmarkError(f"echo: wrong bytes at offset {c.recv_pos}")
                else:
                    n = c.sock.recv_into(buffer)
                    k = min(n, CHECK_BYTES)
                    if buffer[:k] != expected[offset : offset + k]:
                        raise BenchmarkError(f"echo: wrong bytes at offset {c.recv_pos}")
                if not n:
                    raise BenchmarkError("echo: the server closed a connection")
                before = c.recv_pos // fs
                c.recv_pos += n
                done = c.recv_pos // fs - before
                last_progress = now
                if done:
                    completed += done
                    if sending:
                        c.send_limit += done * fc
                        if not c.writing:
                            flush(c)
    finally:
        poller.close()
        for c in conns.values():
            c.sock.close()


def _close_politely(poller: select.epoll, conns: dict[int, _Conn]) -> None:
    """Send a close frame on every connection and wait (bounded) for the server's close."""
    frame = client_frame(0x8, (1000).to_bytes(2, "big"))
    open_fds = set(conns)
    for fd, c in conns.items():
        if c.writing:
            poller.modify(fd, IN)
        try:
            c.sock.send(frame)
        except OSError:
            poller.unregister(fd)
            open_fds.discard(fd)
    deadline = time.perf_counter() + LATE_CLOSE
    while open_fds and time.perf_counter() < deadline:
        for fd, _events in poller.poll(POLL_INTERVAL):
            try:
                data = conns[fd].sock.recv(65536)
            except OSError:
                data = b""
            if not data:
                poller.unregister(fd)
                open_fds.discard(fd)


# -- handshakes --------------------------------------------------------------------------

_CONNECTING, _UPGRADING, _CLOSING = range(3)


class _Handshake:
    __slots__ = ("accept", "buffer", "closed_at", "fd", "request", "sock", "state")

    def __init__(self, port: int, request: bytes, accept: bytes) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setblocking(False)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.fd = self.sock.fileno()
        self.request, self.accept, self.buffer, self.closed_at = request, accept, b"", 0.0
        self.state = _CONNECTING
        self.sock.connect_ex((HOST, port))


def measure_handshakes(
    server: ServerProcess, warmup: float, duration: float, *, concurrency: int = 16
) -> Sample:
    """``concurrency`` loops of connect, upgrade, close handshake, wait for the TCP close.

    The rate is in completed handshakes per second.  RFC 6455 has the server close TCP
    first; a server that has not within :data:`LATE_CLOSE` s is closed by the client.

    Raises:
        BenchmarkError: the server refused an upgrade, stalled or answered wrongly.
    """
    port = server.port
    keys = [handshake_request(port) for _ in range(16)]
    close_frame = client_frame(0x8, (1000).to_bytes(2, "big"))
    poller, poll = _poller()
    live: dict[int, _Handshake] = {}
    started = completed = irregular = 0

    def begin() -> None:
        nonlocal started
        request, accept = keys[started % len(keys)]
        started += 1
        h = _Handshake(port, request, accept)
        live[h.fd] = h
        poller.register(h.fd, select.EPOLLOUT)

    def finish(h: _Handshake) -> None:
        poller.unregister(h.fd)
        del live[h.fd]
        h.sock.close()

    try:
        for _ in range(concurrency):
            begin()
        window = window_for(server)
        start = time.perf_counter()
        measure_at, stop_at = start + warmup, start + warmup + duration
        measuring = False
        sample: Sample | None = None
        last_progress = last_check = start
        irregular_at_open = 0
        while live:
            now = time.perf_counter()
            if sample is None:
                if not measuring and now >= measure_at:
                    window.open(now, completed)
                    measuring, irregular_at_open = True, irregular
                elif measuring and now >= stop_at:
                    sample = window.close(now, completed, irregular - irregular_at_open)
                    last_progress = now
            if now - last_progress > STALL_TIMEOUT:
                raise BenchmarkError(f"handshakes: no progress for {STALL_TIMEOUT:g} s")
            if now - last_check > 0.1:
                last_check = now
                for h in [
                    h for h in live.values() if h.closed_at and now - h.closed_at > LATE_CLOSE
                ]:
                    irregular += 1
                    finish(h)
                    if sample is None:
                        begin()
            for fd, _events in poll(POLL_INTERVAL):
                h = live[fd]
                if h.state == _CONNECTING:
                    error = h.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if error:
                        raise BenchmarkError(f"handshakes: connect failed: {os.strerror(error)}")
                    h.sock.send(h.request)
                    h.state = _UPGRADING
                    poller.modify(fd, IN)
                    continue
                try:
                    data = h.sock.recv(65536)
                except ConnectionResetError:
                    if h.state == _UPGRADING:
                        raise BenchmarkError("handshakes: reset during the upgrade") from None
                    data = b""  # a reset after the close frames counts as the TCP close
                if h.state == _UPGRADING:
                    if not data:
                        raise BenchmarkError("handshakes: closed during the upgrade")
                    h.buffer += data
                    if b"\r\n\r\n" not in h.buffer:
                        continue
                    head, _, rest = h.buffer.partition(b"\r\n\r\n")
                    check_response(head, h.accept)
                    h.buffer, h.state = rest, _CLOSING
                    h.sock.send(close_frame)
                    continue
                if data:  # the server's close frame
                    h.buffer += data
                    h.closed_at = h.closed_at or now
                    continue
                if not h.buffer.startswith(b"\x88"):
                    irregular += 1  # closed without a close frame: counted, and reported
                finish(h)
                completed += 1
                last_progress = now
                if sample is None:
                    begin()
        assert sample is not None
        return sample
    finally:
        poller.close()
        for h in live.values():
            h.sock.close()
