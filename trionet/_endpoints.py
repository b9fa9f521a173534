"""Opening transports: connecting, listening, TLS (the I/O edge, with _transport).

Every failure is translated once, here, into :class:`~trionet._transport.TransportError`
(with its :class:`~trionet.ErrorRecord`) or :class:`~trionet.ListenError`.
"""

from __future__ import annotations

import errno
import socket
import ssl

import trio

from ._events import ErrorCode, ErrorRecord
from ._exceptions import ListenError
from ._transport import TransportError, _errno_of, _strerror
from ._util import url_host

__all__ = ["connect", "open_listeners", "remote_address", "start_tls"]


def remote_address(stream: trio.abc.Stream) -> tuple[str, int]:
    """The peer's ``(ip, port)`` of an accepted or connected stream.

    Streams that are not sockets (the in-memory ones of :mod:`trionet.testing`) may carry a
    ``remote_address`` attribute with that pair.
    """
    if isinstance(stream, trio.SocketStream):
        try:
            peer = stream.socket.getpeername()
        except OSError:
            return ("", 0)
        return (str(peer[0]), int(peer[1]))
    address = getattr(stream, "remote_address", None)
    if isinstance(address, tuple) and len(address) == 2:
        return (str(address[0]), int(address[1]))
    return ("", 0)


async def connect(
    host: str,
    port: int,
    *,
    timeout: float,  # noqa: ASYNC109 - the connect budget, applied with fail_after
    no_delay: bool,
) -> tuple[trio.SocketStream, str, int]:
    """Open a TCP connection to ``host:port`` within ``timeout`` seconds.

    Returns:
        The stream and the peer's resolved ``(ip, port)``.

    Raises:
        TransportError: the name did not resolve, every address refused, or time ran out;
            its record names the host.
    """
    try:
        with trio.fail_after(timeout):
            stream = await trio.open_tcp_stream(host, port)
    except trio.TooSlowError:
        raise TransportError(
            ErrorRecord(
                err_code=ErrorCode.CONNECT_TIMEOUT,
                message=f"connecting to {host}:{port} took longer than {timeout:g} s",
                component_signature="tcp",
            )
        ) from None
    except socket.gaierror as exc:
        raise TransportError(
            ErrorRecord(
                err_code=ErrorCode.RESOLVE_FAILED,
                message=f"cannot resolve host {host!r}: {exc.strerror or exc}",
                component_signature="dns",
            )
        ) from exc
    except OSError as exc:
        code = _errno_of(exc)
        reason = _strerror(code) if code is not None else str(exc)
        raise TransportError(
            ErrorRecord(
                err_code=code if code is not None else ErrorCode.CONNECTION_BROKEN,
                message=f"cannot connect to {host}:{port}: {reason}",
                component_signature="os",
            )
        ) from exc
    stream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, no_delay)
    ip, remote_port = remote_address(stream)
    return stream, ip or host, remote_port or port


async def open_listeners(
    host: str | None, port: int, *, backlog: int | None, reuse_port: bool = False
) -> list[trio.SocketListener]:
    """Bind and listen on every address ``host`` resolves to, all on the same port.

    ``host=None`` means every local interface (IPv4 and IPv6 where available).  With
    ``port=0`` the first socket picks a free port and the others reuse it, so a listener
    has one port whatever the address family.  ``reuse_port`` sets ``SO_REUSEPORT``, so
    that several processes can listen on the same port and the kernel spreads connections
    over them.

    Raises:
        ListenError: the name did not resolve or a bind failed (for instance, port in use).
    """
    try:
        infos = await trio.socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as exc:
        raise ListenError(exc.errno, f"cannot resolve listening host {host!r}: {exc}") from exc
    listeners: list[trio.SocketListener] = []
    seen: set[tuple[int, object]] = set()
    chosen = port
    try:
        for family, type_, proto, _canon, sockaddr in infos:
            if (family, sockaddr[0]) in seen:
                continue
            seen.add((family, sockaddr[0]))
            sock = trio.socket.socket(family, type_, proto)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if reuse_port:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                if family == socket.AF_INET6:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                address = (sockaddr[0], chosen, *sockaddr[2:])
                try:
                    await sock.bind(address)
                except OSError as exc:
                    raise ListenError(
                        exc.errno,
                        f"cannot listen on {url_host(str(sockaddr[0]))}:{chosen}: {exc.strerror}",
                    ) from exc
                sock.listen(backlog if backlog is not None else socket.SOMAXCONN)
                chosen = sock.getsockname()[1]
            except BaseException:
                sock.close()
                raise
            listeners.append(trio.SocketListener(sock))
    except BaseException:
        for listener in listeners:
            listener.socket.close()
        raise
    if not listeners:
        raise ListenError(errno.EADDRNOTAVAIL, f"no address to listen on for host {host!r}")
    return listeners


async def start_tls(
    stream: trio.abc.Stream,
    context: ssl.SSLContext,
    *,
    server_hostname: str | None = None,
    server_side: bool = False,
) -> trio.SSLStream[trio.abc.Stream]:
    """Wrap ``stream`` in TLS and complete the handshake (the caller bounds its time).

    Raises:
        TransportError: the handshake failed; for a client the message says why the
            certificate did not verify, when that was the reason.  ``stream`` is closed.
    """
    tls = trio.SSLStream(stream, context, server_hostname=server_hostname, server_side=server_side)
    try:
        await tls.do_handshake()
    except BaseException as exc:
        await trio.aclose_forcefully(tls)  # also when cancelled (an open timeout, say)
        if not isinstance(exc, (trio.BrokenResourceError, ssl.SSLError, OSError)):
            raise
        cause = exc.__cause__ if exc.__cause__ is not None else exc
        reason = getattr(cause, "verify_message", None) or str(cause) or type(cause).__name__
        peer = f" with {server_hostname}" if server_hostname else ""
        raise TransportError(
            ErrorRecord(
                err_code=ErrorCode.TLS_FAILED,
                message=f"TLS handshake{peer} failed: {reason}",
                component_signature="tls",
            )
        ) from exc
    return tls
