"""The connection underneath a Godot ``StreamPeerTCP``: its state, buffers and task.

A :class:`Link` is one connection attempt.  The network task writes what happened on it
(connected, failed, the peer's FIN, bytes received); ``StreamPeerTCP`` shows those facts
to the program when ``poll()`` (or a data call) applies them.
"""

from __future__ import annotations

import enum
import ipaddress
import logging
import socket
from collections.abc import Awaitable, Callable

import trio

from ._endpoints import connect, remote_address
from ._events import ErrorCode, ErrorRecord
from ._godot_errors import Error
from ._sockets import open_transport
from ._transport import Transport, TransportError

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "Link",
    "Scope",
    "RECEIVE_BUFFER",
    "SEND_BUFFER",
    "Status",
    "connect_bound",
    "is_ip",
    "local_port",
    "warn",
]

log = logging.getLogger("trionet.godot")

# Received bytes one peer holds before its reader stops, in bytes.
#
# Godot leaves received data in the kernel's socket buffer; trionet reads it into its own
# buffer so that get_available_bytes() and the non-blocking reads need no system call.
# 256 KiB is four of the transport's 64 KiB receive chunks: enough that the reader rarely
# stops while a game drains a burst of state updates, and small enough that thousands of
# idle peers cost little.  When it is full the reader stops, the kernel buffer fills and TCP
# flow control slows the sender.  One receive can overshoot by a chunk, so a peer holds at
# most RECEIVE_BUFFER + 64 KiB.
RECEIVE_BUFFER = 256 * 1024

# Bytes put_partial_data() accepts ahead of the network, in bytes.
#
# Godot's put_partial_data hands bytes to the kernel and reports how many it took; here a
# writer task does the sending, and this buffer stands for the kernel's.  64 KiB matches one
# transport chunk; past it put_partial_data reports fewer bytes sent, as Godot does when the
# socket buffer is full.
SEND_BUFFER = 64 * 1024

# Seconds a connection attempt may take: Godot's network/limits/tcp/connect_timeout_seconds.
DEFAULT_CONNECT_TIMEOUT = 30.0


class Status(enum.IntEnum):
    """``StreamPeerTCP.Status``, with Godot's numbers."""

    #: Not connected: the initial status, and the status after a disconnect.
    STATUS_NONE = 0
    #: A connection attempt is under way.
    STATUS_CONNECTING = 1
    #: Connected to a host.
    STATUS_CONNECTED = 2
    #: The connection failed or broke.
    STATUS_ERROR = 3


class Scope:
    """The lifetime a peer lives in: a nursery (``None`` once it is closing) and its peers."""

    def __init__(self, nursery: trio.Nursery) -> None:
        self.nursery: trio.Nursery | None = nursery  # where link tasks run
        self.links: set[Link] = set()  # live connections, ended when the scope closes

    def start(
        self,
        run: Callable[[Link, socket.socket | None], Awaitable[None]],
        link: Link,
        bound: socket.socket | None,
    ) -> bool:
        if self.nursery is None:
            return False
        self.links.add(link)
        self.nursery.start_soon(run, link, bound)
        return True

    def close(self) -> None:
        self.nursery = None
        for link in list(self.links):
            link.scope.cancel()
            link.wake()


class Link:
    """One connection: what the network did, and the bytes in flight either way."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host  # as given to connect_to_host (or the peer's IP when accepted)
        self.ip = host if is_ip(host) else ""  # the peer's IP, once known
        self.port = port  # the peer's port
        self.local_port = 0  # our port, once connected
        self.transport: Transport | None = None  # set once connected
        self.connected = False  # the connect succeeded
        self.failure: Error | None = None  # what broke it (ERR_CONNECTION_ERROR, ...)
        self.eof = False  # the peer's FIN was read
        self.closed = False  # the link task ended and the socket is closed
        self.reading = False  # a get_data() is collecting bytes (the reader task waits)
        self.receiving = False  # the reader task is inside transport.receive()
        self.activity = 0  # counts get_data() starting and ending to collect bytes
        self.buffer = bytearray()  # received, not read yet (bounded by RECEIVE_BUFFER)
        self.outgoing = bytearray()  # queued by put_partial_data (bounded by SEND_BUFFER)
        self.changed = trio.lowlevel.ParkingLot()  # readers wait for bytes or an outcome
        self.room = trio.lowlevel.ParkingLot()  # the reader waits for buffer room
        self.flush = trio.lowlevel.ParkingLot()  # the writer waits for queued bytes
        self.scope = trio.CancelScope()  # cancelled by disconnect_from_host()

    def wake(self) -> None:
        self.changed.unpark_all()

    def fail(self, error: Error, record: ErrorRecord) -> None:
        if self.failure is None:
            self.failure = error
            log.info("connection to %s:%d failed: %s", self.host, self.port, record.message)
        self.scope.cancel()
        self.wake()

    async def read_loop(self, limit: int) -> None:
        """Receive into the buffer until EOF or failure, pausing while it is full.

        It also pauses while a ``get_data`` is collecting bytes: that task then receives
        itself (:meth:`receive_direct`), so the bytes reach it without a task switch.
        After a pause it resumes only once a whole scheduler pass went by without a
        ``get_data`` starting or ending, so that in a request/response exchange (a
        ``get_data`` after every ``put_data``) the next ``get_data`` finds the transport
        free and reads it directly; a program that stops awaiting reads gets its bytes
        buffered again one pass later.
        """
        link = self
        transport = link.transport
        assert transport is not None
        buffer = link.buffer
        while True:
            if len(buffer) >= limit or link.reading:
                await link.room.park()
                while True:
                    seen = link.activity
                    await trio.lowlevel.checkpoint()
                    if link.activity == seen:
                        break
                continue
            if link.eof:  # a get_data read the FIN
                return
            link.receiving = True
            try:
                data = await transport.receive()
            except TransportError as exc:
                link.fail(Error.ERR_CONNECTION_ERROR, exc.record)
                return
            finally:
                link.receiving = False
            if not data:
                link.eof = True
                link.wake()
                return
            buffer += data
            link.wake()

    async def receive_direct(self) -> None:
        """Receive one chunk into the buffer in the calling task (a waiting ``get_data``).

        Only while the reader task is paused (``reading`` set, ``receiving`` clear): one
        task at a time receives.  The buffer is empty when this is called, so it holds at
        most one chunk afterwards.  EOF and failures are recorded as the reader task
        records them.
        """
        transport = self.transport
        assert transport is not None
        self.receiving = True
        try:
            data = await transport.receive()
        except TransportError as exc:
            if not self.closed:  # a disconnect closes the socket under us: no failure
                self.fail(Error.ERR_CONNECTION_ERROR, exc.record)
            return
        finally:
            self.receiving = False
        if data:
            self.buffer += data
        else:
            self.eof = True
        self.wake()

    async def write_loop(self) -> None:
        """Send what put_partial_data queued, in order with the awaited sends."""
        while True:
            while not self.outgoing:
                await self.flush.park()
            if not await self.send_all(b""):
                return

    async def send_all(self, data: bytes | bytearray | memoryview) -> bool:
        """Send the queued bytes, then ``data``; ``False`` (and the link failed) if it broke."""
        transport = self.transport
        assert transport is not None
        gate = transport.gate
        await gate.acquire()
        try:
            if self.outgoing:  # what put_partial_data queued goes first
                queued = bytes(self.outgoing)
                self.outgoing.clear()
                await transport.send_locked(queued)
            if data:
                await transport.send_locked(data)
        except TransportError as exc:
            self.fail(Error.ERR_CONNECTION_ERROR, exc.record)
            return False
        finally:
            gate.release()
        return True

    async def collect(self, n_bytes: int) -> bytes:
        """Take exactly ``n_bytes`` received bytes, waiting for them (a ``get_data``).

        Fewer come back only when the link failed, closed or read the peer's FIN first.
        While collecting, the reader task pauses and this task receives itself
        (:meth:`receive_direct`).  Cancelled, it puts what it took back in front of the
        buffer, so the bytes stay readable in order.
        """
        while self.reading:
            await self.changed.park()
        buffer = self.buffer
        if len(buffer) >= n_bytes:  # the common case: everything is there already
            data = bytes(buffer[:n_bytes])
            del buffer[:n_bytes]
            self.room.unpark_all()
            return data
        self.reading = True
        self.activity += 1
        got = bytearray()
        try:
            while True:
                take = min(len(buffer), n_bytes - len(got))
                if take:
                    got += buffer[:take]
                    del buffer[:take]
                    self.room.unpark_all()
                if len(got) == n_bytes or self.failure is not None or self.eof or self.closed:
                    return bytes(got)
                if self.receiving:  # the reader task is receiving: it will wake us
                    await self.changed.park()
                else:  # it is paused while we read: receive here, without a task switch
                    await self.receive_direct()
        except BaseException:
            buffer[:0] = got
            raise
        finally:
            self.reading = False
            self.activity += 1
            self.room.unpark_all()  # the reader task resumes (see read_loop)
            self.wake()

    async def run(
        self,
        bound: socket.socket | None,
        scope: Scope | None,
        *,
        buffer_size: int,
        connect_timeout: float,
        no_delay: bool,
    ) -> None:
        """The link's task: connect, then read and write until cancelled.  Never raises."""
        try:
            with self.scope:
                if self.transport is None and not await self._open(
                    bound, connect_timeout, no_delay
                ):
                    return
                self.connected = True
                self.wake()
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self.write_loop)
                    await self.read_loop(buffer_size)
                    if self.failure is not None:
                        nursery.cancel_scope.cancel()
        finally:
            if scope is not None:
                scope.links.discard(self)
            if bound is not None:
                bound.close()
            self.closed = True
            if self.transport is not None:
                with trio.CancelScope(shield=True):
                    await self.transport.aclose()
            self.wake()

    async def _open(
        self,
        bound: socket.socket | None,
        connect_timeout: float,  # the connect budget, applied with fail_after by connect()
        no_delay: bool,
    ) -> bool:
        """Connect (``bound``: the socket ``bind()`` prepared); record a failure on the link."""
        try:
            if bound is None:
                stream, ip, port = await connect(
                    self.host, self.port, timeout=connect_timeout, no_delay=no_delay
                )
            else:
                stream, ip, port = await connect_bound(
                    bound, self.host, self.port, connect_timeout, no_delay
                )
        except TransportError as exc:
            if exc.record.err_code == ErrorCode.RESOLVE_FAILED:
                self.fail(Error.ERR_CANT_RESOLVE, exc.record)
            else:
                self.fail(Error.ERR_CONNECTION_ERROR, exc.record)
            return False
        self.ip, self.port = ip, port
        self.local_port = local_port(stream)
        self.transport = open_transport(stream)
        return True


def is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def local_port(stream: trio.abc.Stream) -> int:
    if isinstance(stream, trio.SocketStream):
        try:
            return int(stream.socket.getsockname()[1])
        except OSError:
            return 0
    return 0


def warn(error: Error, message: str) -> Error:
    log.warning("%s (%s)", message, error.name)
    return error


async def connect_bound(
    bound: socket.socket,
    host: str,
    port: int,
    timeout: float,  # noqa: ASYNC109 - the connect budget, applied with fail_after
    no_delay: bool,
) -> tuple[trio.SocketStream, str, int]:
    """Connect the socket ``StreamPeerTCP.bind()`` prepared (``connect`` opens its own)."""
    sock = trio.socket.from_stdlib_socket(bound)
    try:
        with trio.fail_after(timeout):
            infos = await trio.socket.getaddrinfo(host, port, sock.family, socket.SOCK_STREAM)
            await sock.connect(infos[0][4])
    except trio.TooSlowError:
        message = f"connecting to {host}:{port} took longer than {timeout:g} s"
        code: int = ErrorCode.CONNECT_TIMEOUT
    except socket.gaierror as exc:
        message = f"cannot resolve host {host!r}: {exc.strerror or exc}"
        code = ErrorCode.RESOLVE_FAILED
    except OSError as exc:
        message = f"cannot connect to {host}:{port}: {exc.strerror or exc}"
        code = exc.errno or ErrorCode.CONNECTION_BROKEN
    else:
        stream = trio.SocketStream(sock)
        stream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, no_delay)
        ip, remote_port = remote_address(stream)
        return stream, ip or host, remote_port or port
    sock.close()
    raise TransportError(ErrorRecord(err_code=code, message=message, component_signature="tcp"))
