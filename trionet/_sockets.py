"""TCP sockets without trio's SocketStream: the socket transport, and accepting into it.

Everything here is the socket half of the I/O edge (:mod:`trionet._transport` holds the
transport contract and the stream half): failures are translated into
:class:`~trionet._transport.TransportError` here and nowhere else.
"""

from __future__ import annotations

import errno
import math
import socket
import sys
from collections.abc import Callable

import trio

from ._transport import (
    RECEIVE_SIZE,
    StreamTransport,
    Transport,
    _broken,
    _send_timed_out,
)

__all__ = ["SocketTransport", "accept_sockets", "listening_socket", "open_transport"]

# The most connections one accept loop takes before it lets other tasks run.
#
# Accepting until the backlog is empty saves a pass of the scheduler and an epoll
# registration per connection while connections arrive in bursts; the bound keeps a
# flood of connects from starving the connections already accepted.
ACCEPT_BATCH = 16

# Failures of accept() that concern one connection that is already gone (reset, aborted,
# refused by a firewall), not the listening socket: skipped, as trio's SocketListener does.
_SKIPPED_ERRNOS = frozenset(
    getattr(errno, name)
    for name in (
        "EPERM",
        "ECONNABORTED",
        "EPROTO",
        "ENETDOWN",
        "ENOPROTOOPT",
        "EHOSTDOWN",
        "ENONET",
        "EHOSTUNREACH",
        "EOPNOTSUPP",
        "ENETUNREACH",
        "ENOSR",
        "ESOCKTNOSUPPORT",
        "EPROTONOSUPPORT",
        "ETIMEDOUT",
        "ECONNRESET",
    )
    if hasattr(errno, name)
)
_CLOSED_ERRNOS = frozenset({errno.EBADF, errno.ENOTSOCK})


def listening_socket(listener: trio.abc.Listener[trio.abc.Stream]) -> socket.socket | None:
    """The stdlib socket a ``trio.SocketListener`` accepts on, or ``None`` for others."""
    if type(listener) is not trio.SocketListener:
        return None
    inner = getattr(listener.socket, "_sock", None)
    if type(inner) is socket.socket and inner.gettimeout() == 0.0:
        return inner
    return None


async def accept_sockets(
    sock: socket.socket, accepted: Callable[[socket.socket, tuple[str, int]], None]
) -> None:
    """Accept on the listening ``sock`` until it is closed, handing on each connection.

    ``accepted(connection, (ip, port))`` gets the new socket as the kernel gave it (in
    blocking mode, options untouched: see :func:`adopt`).  Returns once the listening
    socket is closed; raises :class:`OSError` for failures of the listening socket itself
    (running out of descriptors, say), after which calling it again resumes accepting.
    """
    batch = 0
    while True:
        try:
            connection, address = sock.accept()
        except BlockingIOError:
            connection = None  # wait below: not inside the handler (see SocketTransport)
        except OSError as exc:
            if exc.errno in _CLOSED_ERRNOS:
                return
            if exc.errno in _SKIPPED_ERRNOS:
                continue
            raise
        if connection is None:
            batch = 0
            try:
                await trio.lowlevel.wait_readable(sock)
            except trio.ClosedResourceError:
                return
            continue
        accepted(connection, (str(address[0]), int(address[1])))
        batch += 1
        if batch == ACCEPT_BATCH:
            batch = 0
            await trio.lowlevel.checkpoint()


def adopt(sock: socket.socket, *, no_delay: bool) -> SocketTransport:
    """The transport for a socket from :func:`accept_sockets`: non-blocking, Nagle as asked.

    ``TCP_NOTSENT_LOWAT`` is set as trio's ``SocketStream`` sets it (16 KiB), so that
    a connection feels its peer's backpressure the same way on either path.
    """
    try:
        sock.setblocking(False)
        if no_delay:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if _NOTSENT_LOWAT is not None:
            sock.setsockopt(socket.IPPROTO_TCP, _NOTSENT_LOWAT, 2**14)
    except OSError as exc:
        sock.close()
        raise _broken(exc, "setting up the socket") from exc
    return SocketTransport(sock, no_delay=no_delay)


_NOTSENT_LOWAT: int | None = getattr(socket, "TCP_NOTSENT_LOWAT", None)

# A receive that finds the socket empty looks again after one pass of the scheduler while
# that finds data; after this many misses in a row it waits at once instead, and looks
# again only every RETRY_PROBE-th time (see SocketTransport._receive_when_empty).
RETRY_MISSES = 4
RETRY_PROBE = 16

# Whether trio waits with epoll here (see SocketTransport.aclose).
_EPOLL = sys.platform == "linux"


class SocketTransport(Transport):
    """A :class:`Transport` that drives a TCP socket with trio's low-level I/O waits.

    It owns a stdlib socket (accepted by :func:`accept_sockets`, or taken out of a
    ``trio.SocketStream``) and does what ``SocketStream`` and trio's socket wrapper would
    do — try the call, wait for readiness only if it would block — minus their per-call
    conflict detection and generator-based error translation, which cost more than
    everything else trionet does per message.  The send gate already rules out concurrent
    sends, the network task is the only reader, and errors are translated here.

    One more step saves most waits in request/response traffic: when a receive finds the
    socket empty, it yields once to the other tasks and tries again before registering
    with epoll.  The answer to what we just sent often arrives in that time, and then a
    registration, an epoll wake-up and a failed ``recv`` are saved.  Where it keeps
    missing (a peer that sends now and then), the step is skipped but for an occasional
    probe.
    """

    __slots__ = ("_misses", "_no_delay", "_read_size", "_sock", "_waiters")

    def __init__(self, sock: socket.socket, *, no_delay: bool) -> None:
        """Own ``sock``, a connected non-blocking TCP socket with ``TCP_NODELAY`` as given."""
        super().__init__()
        self.can_lend = True  # _send_all sees a send that has to wait
        self._sock = sock
        self._no_delay = no_delay
        self._waiters = 0  # tasks inside trio's wait_readable / wait_writable on the socket
        self._read_size = RECEIVE_SIZE  # the next recv's; see Transport.receive_limit
        self._misses = 0  # second looks in a row that found nothing (_receive_when_empty)

    @classmethod
    def from_stream(cls, stream: trio.SocketStream) -> SocketTransport:
        """Take over the socket of ``stream`` (which turned Nagle's algorithm off).

        The descriptor is owned as a plain non-blocking socket from here on: trio's own
        (its wrapper keeps the stdlib socket as ``_sock`` and has no finalizer), or else
        a new one on the detached descriptor.  Taking trio's saves a socket object and a
        system call per connection.
        """
        trio_socket = stream.socket
        inner = getattr(trio_socket, "_sock", None)
        if type(inner) is not socket.socket or inner.gettimeout() != 0.0:
            inner = socket.socket(
                trio_socket.family, trio_socket.type, trio_socket.proto, trio_socket.detach()
            )
            inner.setblocking(False)
        return cls(inner, no_delay=True)

    async def _receive_some(self, missed: bool = False) -> bytes:
        await trio.lowlevel.checkpoint_if_cancelled()
        if not missed:
            # The waits come after the except clause, not inside it: an exception being
            # handled stays alive, traceback and all, for as long as its handler is
            # suspended (about 0.5 KiB per idle connection).
            try:
                data = self._sock.recv(self._read_size)
            except BlockingIOError:
                pass
            except OSError as exc:
                self.broken = True
                raise _broken(exc, "receive") from exc
            else:
                self._sized(len(data))
                await trio.lowlevel.cancel_shielded_checkpoint()
                return data
        return await self._receive_when_empty()

    async def _receive_when_empty(self) -> bytes:
        """The socket was just found empty: look again after one pass, or wait for it.

        The second look pays when the peer answers what was just written (request and
        response); when it keeps finding nothing (a peer that sends now and then), it
        costs a failed ``recv`` and a pass of the scheduler per message, so it is left
        out after RETRY_MISSES misses in a row, except every RETRY_PROBE-th time, to
        notice when it would pay again.
        """
        sock = self._sock
        misses = self._misses
        try:
            if not self.waits_at_once():
                await trio.lowlevel.checkpoint()
                try:
                    data = sock.recv(self._read_size)
                except BlockingIOError:
                    self._misses = misses + 1
                else:
                    self._misses = 0
                    self._sized(len(data))
                    return data
            else:
                self._misses = misses + 1  # left out: it has not been paying
            while True:
                if self.pending:
                    await self.flush()  # what was accepted goes out before we wait
                self.waiting = True
                self._waiters += 1
                try:
                    await trio.lowlevel.wait_readable(sock)
                finally:
                    self.waiting = False
                    self._waiters -= 1
                try:
                    data = sock.recv(self._read_size)
                    break
                except BlockingIOError:
                    pass
        except (OSError, trio.ClosedResourceError) as exc:
            self.broken = True
            raise _broken(exc, "receive") from exc
        self._sized(len(data))
        return data

    def waits_at_once(self) -> bool:
        """Whether the next receive that finds nothing leaves out its second look."""
        misses = self._misses
        return misses >= RETRY_MISSES and misses % RETRY_PROBE != 0

    def _sized(self, received: int) -> None:
        # A full read means more is probably waiting: the next one may take more.
        self._read_size = self.receive_limit if received == self._read_size else RECEIVE_SIZE

    def receive_nowait(self) -> bytes | None:
        """The next chunk if the socket has one now (``b""`` at EOF), else ``None``."""
        try:
            data = self._sock.recv(self._read_size)
        except BlockingIOError:
            return None
        except OSError as exc:
            self.broken = True
            raise _broken(exc, "receive") from exc
        if not data:
            self.eof_received = True
        self._sized(len(data))
        return data

    async def _send_all(self, data: bytes | bytearray | memoryview, head: bytes = b"") -> None:
        sock = self._sock
        await trio.lowlevel.checkpoint_if_cancelled()
        deadline = math.inf
        timed_out = False
        try:
            with memoryview(data) as view:
                sent = -len(head)  # of data; below 0 while part of head is still unsent
                while sent < len(view):
                    try:
                        if sent < 0:  # gather write: head and data are never joined
                            sent += sock.sendmsg((head[len(head) + sent :], view))
                        else:
                            sent += sock.send(view[sent:])
                        continue
                    except BlockingIOError:
                        pass  # wait below, outside the handler (see _receive_some)
                    if self.on_send_wait is not None:
                        self.on_send_wait()
                    # The timeout only costs something once the peer is slow.
                    if deadline == math.inf:
                        deadline = trio.current_time() + self.send_timeout
                    self._waiters += 1
                    try:
                        with trio.move_on_at(deadline) as waiting:
                            await trio.lowlevel.wait_writable(sock)
                    finally:
                        self._waiters -= 1
                    if waiting.cancelled_caught:
                        timed_out = True
                        break
        except (OSError, trio.ClosedResourceError) as exc:
            self.broken = True
            raise _broken(exc, "send") from exc
        if timed_out:
            self.broken = True
            raise _send_timed_out(self.send_timeout)
        await trio.lowlevel.cancel_shielded_checkpoint()

    async def _shutdown_write(self) -> None:
        try:
            self._sock.shutdown(socket.SHUT_WR)
        except OSError as exc:
            self.broken = True
            raise _broken(exc, "shutdown") from exc

    async def aclose(self) -> None:
        """Close the socket now (idempotent); tasks waiting on it are woken first.

        Closing is one system call that never blocks, so this returns without a pass of
        the scheduler: it is the last step of a connection's end, and a pass here would
        only delay the ``terminate`` that follows.

        When no task waits on the socket, trio is not told (on Linux): its epoll backend
        then holds nothing for the descriptor, and the kernel drops the descriptor from the
        epoll set as it closes, so telling it would only cost a failing ``epoll_ctl``.
        """
        sock = self._sock
        if sock.fileno() != -1:
            if self._waiters or not _EPOLL:
                trio.lowlevel.notify_closing(sock)
            sock.close()

    def set_no_delay(self, enabled: bool) -> None:
        """Set ``TCP_NODELAY`` (no system call when it is set that way already)."""
        if enabled != self._no_delay:
            self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, enabled)
            self._no_delay = enabled

    can_cork = True

    def flush_nowait(self) -> None:
        """Write as much of what is pending as the socket takes now (never waits).

        Nothing is written while another task is inside a send (its frame must not be
        split); what is left goes out with the next send or :meth:`flush`.
        """
        pending = self.pending
        if not pending or self.gate._held or self.broken:
            return
        try:
            sent = self._sock.send(pending)
        except OSError:  # BlockingIOError, or a failure the next send will report
            return
        del pending[:sent]


def open_transport(stream: trio.abc.Stream) -> Transport:
    """The transport for ``stream``: the socket fast path for TCP sockets."""
    if isinstance(stream, trio.SocketStream):
        return SocketTransport.from_stream(stream)
    return StreamTransport(stream)
