"""TCPConnection and TCPListener over real loopback sockets, against plain trio peers."""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import random
import socket
import struct

import attrs
import pytest
import trio

import trionet
from trionet import ErrorCode, TCPConnection, TCPEvent, TCPListener
from trionet.testing import EventRecorder

from .conftest import TaskCounter, open_fds

HOST = "127.0.0.1"
TERMINAL = {"close", "error"}


def assert_sequence(types: list[str], *, connected: bool = True) -> None:
    """Check connection · data* · (close|error) · terminate (or error · terminate)."""
    assert types.count("terminate") == 1, types
    assert types[-1] == "terminate", types
    if connected:
        assert types[0] == "connection", types
        assert all(t == "data" for t in types[1:-2]), types
        assert types[-2] in TERMINAL, types
    else:
        assert types == ["error", "terminate"], types


class EchoListener:
    """Listener handler: accept every connection with an echoing recorder."""

    def __init__(self) -> None:
        self.recorders: list[EventRecorder] = []

    def on_connection(self, listener: TCPListener, event: TCPEvent) -> EventRecorder:
        recorder = EventRecorder(echo=True)
        self.recorders.append(recorder)
        return recorder


async def collect(conn: TCPConnection, until: int) -> tuple[list[str], bytes]:
    """Read events() to the end, shutting down once ``until`` bytes arrived."""
    types: list[str] = []
    data = bytearray()
    async for event in conn.events():
        types.append(event.type.value)
        if event.type == "data":
            assert event.data is not None
            data += event.data
            if len(data) >= until:
                await conn.shutdown()
    return types, bytes(data)


async def test_echo_both_styles_and_event_fields() -> None:
    echo = EchoListener()
    with trio.fail_after(10):
        async with TCPListener.new(0, echo, host=HOST) as listener:
            assert listener.port > 0
            async with TCPConnection.new(HOST, listener.port) as conn:
                await conn.send(b"hello ")
                await conn.send(bytearray(b"world"))
                types, data = await collect(conn, 11)
            assert data == b"hello world"
            assert_sequence(types)
            assert types[-2] == "close"
            assert conn.closed
            assert conn.errors == []
            assert conn.listener is None
            await echo.recorders[0].wait_for("terminate")
    server = echo.recorders[0]
    assert_sequence(server.types)
    assert server.received == b"hello world"
    first = server.events[0]
    assert first.type == "connection"
    assert first.ip == HOST
    assert first.data is None
    assert server.events[1].port == first.port != listener.port


async def test_serve_function_style_with_plain_trio_client() -> None:
    seen: list[TCPConnection] = []

    async def serve(conn: TCPConnection) -> None:
        seen.append(conn)
        async for event in conn.events():
            if event.type == "data":
                assert event.data is not None
                await conn.send(event.data.upper())

    with trio.fail_after(10):
        async with TCPListener.new(0, serve, host=HOST) as listener:
            stream = await trio.open_tcp_stream(HOST, listener.port)
            async with stream:
                await stream.send_all(b"abc")
                assert await stream.receive_some(10) == b"ABC"
                await stream.send_eof()
                assert await stream.receive_some(10) == b""
            await seen[0].wait()
    assert seen[0].listener is listener
    assert seen[0].closed


async def test_connection_against_plain_trio_server() -> None:
    received = bytearray()

    async def handler(stream: trio.SocketStream) -> None:
        async with stream:
            while data := await stream.receive_some():
                received.extend(data)
            await stream.send_all(b"bye")

    recorder = EventRecorder()
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(
                functools.partial(trio.serve_tcp, handler, 0, host=HOST)
            )
            port = listeners[0].socket.getsockname()[1]
            async with TCPConnection.new(HOST, port, recorder) as conn:
                # Sent before the connect completes: queued, then flushed in order.
                for i in range(100):
                    await conn.send(b"%03d," % i)
                await conn.shutdown()
                await recorder.wait_for("terminate")
            nursery.cancel_scope.cancel()
    assert bytes(received) == b"".join(b"%03d," % i for i in range(100))
    assert recorder.received == b"bye"
    assert_sequence(recorder.types)
    assert recorder.types[-2] == "close"


async def test_large_transfer_arrives_intact() -> None:
    size = 8 * 1024 * 1024 + 12345
    payload = random.Random(7).randbytes(size)
    echo = EchoListener()
    with trio.fail_after(60):
        async with TCPListener.new(0, echo, host=HOST) as listener:
            async with TCPConnection.new(HOST, listener.port, no_delay=True) as conn:
                assert conn.no_delay

                async def sender() -> None:
                    view = memoryview(payload)
                    for start in range(0, size, 100_000):
                        await conn.send(view[start : start + 100_000])

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(sender)
                    types, data = await collect(conn, size)
    assert hashlib.sha256(data).digest() == hashlib.sha256(payload).digest()
    assert_sequence(types)


async def test_refused_connection_gets_error_and_no_data() -> None:
    probe = trio.socket.socket()
    await probe.bind((HOST, 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there now
    recorder = EventRecorder()
    with trio.fail_after(10):
        async with TCPConnection.new(HOST, port, recorder) as conn:
            await conn.send(b"lost")  # queued; the error says it never went out
            assert await conn.wait(5)
    assert recorder.types == ["error", "terminate"]
    assert recorder.received == b""
    (record,) = recorder.events[0].errors
    assert record.err_code == errno.ECONNREFUSED
    assert str(port) in record.message
    assert conn.errors == [record]
    with pytest.raises(trionet.ConnectionClosedError):
        await conn.send(b"more")


class FailingResolver(trio.abc.HostnameResolver):
    """A resolver that knows no names (deterministic, no DNS traffic)."""

    async def getaddrinfo(self, host: object, port: object, *args: object) -> list[object]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    async def getnameinfo(self, sockaddr: object, flags: int) -> tuple[str, str]:
        raise NotImplementedError


async def test_unresolvable_host_error_names_the_host() -> None:
    previous = trio.socket.set_custom_hostname_resolver(FailingResolver())
    try:
        with trio.fail_after(5):
            async with TCPConnection.new("no-such-host.invalid", 80) as conn:
                events = [event async for event in conn.events()]
    finally:
        trio.socket.set_custom_hostname_resolver(previous)
    assert [e.type.value for e in events] == ["error", "terminate"]
    (record,) = events[0].errors
    assert record.err_code == ErrorCode.RESOLVE_FAILED
    assert "no-such-host.invalid" in record.message
    assert record.component_signature == "dns"


async def test_connection_timeout_is_reported() -> None:
    # A listener with a full accept queue drops further SYNs, so connect() hangs.
    server = socket.socket()
    server.bind((HOST, 0))
    server.listen(0)
    port = server.getsockname()[1]
    filler = socket.create_connection((HOST, port))
    try:
        with trio.fail_after(10):
            async with TCPConnection.new(HOST, port, connection_timeout=0.3) as conn:
                events = [event async for event in conn.events()]
    finally:
        filler.close()
        server.close()
    assert [e.type.value for e in events] == ["error", "terminate"]
    assert events[0].errors[0].err_code == ErrorCode.CONNECT_TIMEOUT


async def test_port_in_use_is_reported() -> None:
    async with TCPListener.new(0, EchoListener(), host=HOST) as first:
        with pytest.raises(trionet.ListenError) as info:
            async with TCPListener.new(first.port, EchoListener(), host=HOST):
                pytest.fail("bound a port that is in use")  # pragma: no cover
    assert info.value.errno == errno.EADDRINUSE
    assert isinstance(info.value, OSError)
    assert str(first.port) in str(info.value)


@pytest.mark.parametrize("port", [-1, 65536, 10**6])
def test_port_out_of_range_raises_value_error(port: int) -> None:
    with pytest.raises(ValueError, match="port"):
        TCPConnection.new(HOST, port)
    with pytest.raises(ValueError, match="port"):
        TCPListener.new(port, EchoListener())


@pytest.mark.parametrize(
    ("call", "exc", "argument"),
    [
        (lambda: TCPConnection.new(HOST, "80"), TypeError, "port"),  # type: ignore[arg-type]
        (lambda: TCPConnection.new(HOST, True), TypeError, "port"),
        (
            lambda: TCPConnection.new(HOST, 80, connection_timeout=0),
            ValueError,
            "connection_timeout",
        ),
        (lambda: TCPConnection.new(HOST, 80, close_timeout=-1.0), ValueError, "close_timeout"),
        (lambda: TCPConnection.new(HOST, 80, no_delay=1), TypeError, "no_delay"),  # type: ignore[arg-type]
        (lambda: TCPConnection.new(HOST, 80, object()), TypeError, "handler"),
        (lambda: TCPConnection.new(80, 80), TypeError, "address"),  # type: ignore[arg-type]
        (lambda: TCPListener.new(0, object()), TypeError, "handler"),
        (lambda: TCPListener.new(0, EchoListener(), backlog=0), ValueError, "backlog"),
        (lambda: TCPListener.new(0, {"onData": print}), TypeError, "on_connection"),
    ],
)
def test_bad_arguments_name_the_argument(call: object, exc: type[Exception], argument: str) -> None:
    with pytest.raises(exc, match=argument):
        call()  # type: ignore[operator]


async def test_send_type_and_send_after_close() -> None:
    with trio.fail_after(10):
        async with TCPListener.new(0, EchoListener(), host=HOST) as listener:
            async with TCPConnection.new(HOST, listener.port) as conn:
                with pytest.raises(TypeError, match="data"):
                    await conn.send("text")  # type: ignore[arg-type]
                await conn.shutdown()
                with pytest.raises(trionet.ConnectionClosedError, match="shut down"):
                    await conn.send(b"after shutdown")
            with pytest.raises(trionet.ConnectionClosedError):
                await conn.send(b"after the block")
            with pytest.raises(trionet.LocalProtocolError, match="handler"):
                async with TCPConnection.new(HOST, listener.port, EventRecorder()) as other:
                    other.events()


async def test_handler_error_is_contained_to_its_connection() -> None:
    class Fragile:
        def on_data(self, conn: TCPConnection, event: TCPEvent) -> None:
            if event.data and b"boom" in event.data:
                raise RuntimeError("handler exploded")

    class Mixed:
        def __init__(self) -> None:
            self.count = 0
            self.accepted: list[TCPConnection] = []

        def on_connection(self, listener: TCPListener, event: TCPEvent) -> object:
            self.count += 1
            return Fragile() if self.count == 1 else EventRecorder(echo=True)

    listener_handler = Mixed()
    with trio.fail_after(10):
        async with TCPListener.new(0, listener_handler, host=HOST) as listener:
            bad = await trio.open_tcp_stream(HOST, listener.port)
            good = await trio.open_tcp_stream(HOST, listener.port)
            await bad.send_all(b"boom")
            # The failing connection is closed by the server (FIN after the error).
            assert await bad.receive_some(100) == b""
            for i in range(5):
                await good.send_all(b"ping %d" % i)
                assert await good.receive_some(100) == b"ping %d" % i
            await bad.aclose()
            await good.aclose()
            assert len(listener.connections) <= 2
            listener.terminate()
    assert listener.terminated


async def test_handler_error_event_says_why() -> None:
    events: list[TCPEvent] = []
    terminated = trio.Event()

    class Raiser:
        async def on_data(self, conn: TCPConnection, event: TCPEvent) -> None:
            raise ValueError("bad payload")

        def onError(self, conn: TCPConnection, event: TCPEvent) -> None:
            events.append(event)

        def onTerminate(self, conn: TCPConnection, event: TCPEvent) -> None:
            events.append(event)
            terminated.set()

    class Accept:
        def onConnection(self, listener: TCPListener, event: TCPEvent) -> Raiser:
            return Raiser()

    with trio.fail_after(10):
        async with TCPListener.new(0, Accept(), host=HOST) as listener:
            async with await trio.open_tcp_stream(HOST, listener.port) as stream:
                await stream.send_all(b"x")
                assert await stream.receive_some(10) == b""
            await terminated.wait()
    assert [e.type.value for e in events] == ["error", "terminate"]
    (record,) = events[0].errors
    assert record.err_code == ErrorCode.HANDLER_RAISED
    assert "on_data" in record.message
    assert "bad payload" in record.message


async def test_nothing_outlives_the_blocks(task_counter: TaskCounter) -> None:
    before_fds = open_fds()
    before_tasks = task_counter.alive
    with trio.fail_after(20):
        for _ in range(3):
            async with TCPListener.new(0, EchoListener(), host=HOST) as listener:
                conns: list[TCPConnection] = []

                async def client(port: int, conns: list[TCPConnection]) -> None:
                    async with TCPConnection.new(HOST, port) as conn:
                        conns.append(conn)
                        await conn.send(b"hi")
                        async for event in conn.events():
                            if event.type == "data":
                                break

                async with trio.open_nursery() as nursery:
                    for _ in range(10):
                        nursery.start_soon(client, listener.port, conns)
                assert len(conns) == 10
                assert all(conn.closed for conn in conns)
    assert task_counter.alive == before_tasks
    assert open_fds() == before_fds


async def test_listener_terminate_frees_port_and_ends_connections() -> None:
    echo = EchoListener()
    with trio.fail_after(15):
        async with TCPListener.new(0, echo, host=HOST) as listener:
            port = listener.port
            streams = [await trio.open_tcp_stream(HOST, port) for _ in range(3)]
            for stream in streams:
                await stream.send_all(b"x")
                assert await stream.receive_some(10) == b"x"

            # From another thread, as 4D allows: twice, to show it is idempotent.
            def stop_twice() -> None:
                listener.terminate()
                trio.from_thread.run_sync(listener.terminate)

            await trio.to_thread.run_sync(stop_twice)
            for stream in streams:
                assert await stream.receive_some(10) == b""  # orderly FIN from the server
                await stream.aclose()
            await listener.wait()
            assert listener.connections == []
            # The port is free again.
            async with TCPListener.new(port, EchoListener(), host=HOST) as again:
                assert again.port == port
    for recorder in echo.recorders:
        assert_sequence(recorder.types)
        assert recorder.types[-2] == "close"


async def test_connection_terminate_from_thread_and_wait() -> None:
    with trio.fail_after(10):
        async with TCPListener.new(0, EchoListener(), host=HOST) as listener:
            async with TCPConnection.new(HOST, listener.port) as conn:
                assert await conn.wait(0.05) is False
                event = await conn.events().receive()
                assert event.type == "connection"
                await trio.to_thread.run_sync(conn.terminate)
                assert await conn.wait(5)
                rest = [e.type.value async for e in conn.events()]
            assert rest == ["close", "terminate"]
            with pytest.raises(ValueError, match="timeout"):
                await conn.wait(-1)


async def test_wait_inside_own_callback_is_refused() -> None:
    problems: list[BaseException] = []

    class Waiter:
        async def on_connection(self, conn: TCPConnection, event: TCPEvent) -> None:
            try:
                await conn.wait(1)
            except trionet.LocalProtocolError as exc:
                problems.append(exc)
            conn.terminate()

    with trio.fail_after(10):
        async with TCPListener.new(0, EchoListener(), host=HOST) as listener:
            async with TCPConnection.new(HOST, listener.port, Waiter()) as conn:
                assert await conn.wait(5)
    assert len(problems) == 1


async def test_peer_close_then_reply_iteration_style() -> None:
    """After the peer's FIN we may still send until we ask for the next event."""

    async def serve(conn: TCPConnection) -> None:
        received = bytearray()
        async for event in conn.events():
            if event.type == "data":
                assert event.data is not None
                received += event.data
            elif event.type == "close":
                await conn.send(b"got %d bytes" % len(received))

    with trio.fail_after(10):
        async with TCPListener.new(0, serve, host=HOST) as listener:
            async with await trio.open_tcp_stream(HOST, listener.port) as stream:
                await stream.send_all(b"a" * 1000)
                await stream.send_eof()
                reply = b""
                while chunk := await stream.receive_some(100):
                    reply += chunk
    assert reply == b"got 1000 bytes"


async def test_peer_close_then_reply_handler_style() -> None:
    class Replier:
        def __init__(self) -> None:
            self.size = 0

        def on_data(self, conn: TCPConnection, event: TCPEvent) -> None:
            self.size += len(event.data or b"")

        async def on_shutdown(self, conn: TCPConnection, event: TCPEvent) -> None:
            await conn.send(b"total=%d" % self.size)

    class Accept:
        def on_connection(self, listener: TCPListener, event: TCPEvent) -> Replier:
            return Replier()

    with trio.fail_after(10):
        async with TCPListener.new(0, Accept(), host=HOST) as listener:
            async with await trio.open_tcp_stream(HOST, listener.port) as stream:
                await stream.send_all(b"b" * 5000)
                await stream.send_eof()
                reply = b""
                while chunk := await stream.receive_some(100):
                    reply += chunk
    assert reply == b"total=5000"


async def test_refusing_connections_and_mapping_handlers() -> None:
    calls: list[str] = []

    def on_connection(listener: TCPListener, event: TCPEvent) -> object:
        calls.append(event.ip)
        return None if len(calls) == 1 else {"onData": lambda conn, ev: calls.append("data")}

    with trio.fail_after(10):
        async with TCPListener.new(0, {"onConnection": on_connection}, host=HOST) as listener:
            async with await trio.open_tcp_stream(HOST, listener.port) as refused:
                assert await refused.receive_some(10) == b""
            async with await trio.open_tcp_stream(HOST, listener.port) as accepted:
                await accepted.send_all(b"z")
                await accepted.send_eof()
                assert await accepted.receive_some(10) == b""
    assert calls == [HOST, HOST, "data"]


async def test_leaving_block_while_peer_still_sends_closes_orderly() -> None:
    """Ending our side drains what the peer sends, so the peer sees FIN, not RST."""
    with trio.fail_after(15):
        async with TCPListener.new(0, EchoListener(), host=HOST) as listener:
            async with TCPConnection.new(HOST, listener.port, close_timeout=5) as conn:
                await conn.send(b"q" * 200_000)
                first = await conn.events().receive()
                assert first.type == "connection"
    assert conn.closed
    assert all(r.err_code != ErrorCode.CLOSE_TIMEOUT for r in conn.errors)


def test_events_are_frozen() -> None:
    event = TCPEvent(type=trionet.TCPEventType.DATA, data=b"x", ip=HOST, port=1)
    assert event.type == "data"
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        event.data = b"y"  # type: ignore[misc]
    assert "x" in repr(event)
    long = TCPEvent(type=trionet.TCPEventType.DATA, data=b"y" * 1000)
    assert len(repr(long)) < 200


async def test_data_queued_before_connect_is_flushed_when_block_ends_at_once() -> None:
    """Leaving the block right after send() still delivers what send() accepted."""
    received = bytearray()
    done = trio.Event()

    async def serve(conn: TCPConnection) -> None:
        async for event in conn.events():
            if event.type == "data":
                assert event.data is not None
                received.extend(event.data)
        done.set()

    with trio.fail_after(10):
        async with TCPListener.new(0, serve, host=HOST) as listener:
            async with TCPConnection.new(HOST, listener.port) as conn:
                await conn.send(b"queued before the connect")
            await done.wait()
    assert bytes(received) == b"queued before the connect"
    assert not any(r.err_code == ErrorCode.CONNECT_ABORTED for r in conn.errors)


async def test_terminate_before_connect_without_data_aborts() -> None:
    async with TCPListener.new(0, EchoListener(), host=HOST) as listener:
        with trio.fail_after(10):
            async with TCPConnection.new(HOST, listener.port) as conn:
                conn.terminate()
                events = [event async for event in conn.events()]
    assert [e.type.value for e in events] == ["error", "terminate"]
    assert events[0].errors[0].err_code == ErrorCode.CONNECT_ABORTED


async def test_shutdown_during_connection_event_keeps_reading() -> None:
    """Regression: a half-close while ``connection`` is delivered must not stop reading."""
    from trionet.testing import open_connection_pair

    class HalfCloseAtOnce(EventRecorder):
        async def on_connection(self, conn: TCPConnection, event: TCPEvent) -> None:
            await self._record(conn, event)
            await conn.shutdown()

    class Answer:
        async def on_shutdown(self, conn: TCPConnection, event: TCPEvent) -> None:
            await conn.send(b"answer after the client's FIN")

    client = HalfCloseAtOnce()
    with trio.fail_after(10):
        async with open_connection_pair(client, Answer()) as pair:
            await client.wait_for("terminate")
    assert_sequence(client.types)
    assert client.types[-2] == "close"
    assert client.received == b"answer after the client's FIN"
    assert pair.a.errors == []


async def test_peer_reset_over_loopback_is_an_error_event() -> None:
    echo = EchoListener()
    with trio.fail_after(10):
        async with TCPListener.new(0, echo, host=HOST) as listener:
            stream = await trio.open_tcp_stream(HOST, listener.port)
            await stream.send_all(b"hello")
            assert await stream.receive_some(10) == b"hello"
            # SO_LINGER with a zero timeout: close() sends RST instead of FIN.
            stream.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            await stream.aclose()
            await echo.recorders[0].wait_for("terminate")
    server = echo.recorders[0]
    assert_sequence(server.types)
    assert server.types[-2] == "error"
    (record,) = server.events[-2].errors
    assert record.err_code in (errno.ECONNRESET, errno.EPIPE)
    assert "ECONNRESET" in record.message or "EPIPE" in record.message


async def test_terminate_mid_transfer_over_loopback() -> None:
    """terminate() while 4 MiB stream in both ways: orderly end, peer sees FIN, no RST."""
    payload = b"z" * (4 * 1024 * 1024)
    with trio.fail_after(20):
        async with TCPListener.new(0, EchoListener(), host=HOST) as listener:
            async with TCPConnection.new(HOST, listener.port) as conn:
                received = 0

                async def sender() -> None:
                    # terminate() may end the connection before it all went out.
                    with contextlib.suppress(trionet.ConnectionClosedError):
                        await conn.send(payload)

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(sender)
                    types: list[str] = []
                    async for event in conn.events():
                        types.append(event.type.value)
                        if event.type == "data":
                            received += len(event.data or b"")
                            if received >= 1024 * 1024:
                                conn.terminate()
    assert_sequence(types)
    assert types[-2] == "close"
    assert received >= 1024 * 1024
    assert not any(r.err_code == ErrorCode.CLOSE_TIMEOUT for r in conn.errors)


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


class DualLoopbackResolver(trio.abc.HostnameResolver):
    """Resolves the name ``dual.test`` to both loopback addresses (no DNS traffic)."""

    async def getaddrinfo(
        self,
        host: object,
        port: object,
        family: int = 0,
        type: int = 0,
        proto: int = 0,
        flags: int = 0,
    ) -> list[tuple[socket.AddressFamily, socket.SocketKind, int, str, tuple[object, ...]]]:
        assert host in (b"dual.test", "dual.test")
        number = port if isinstance(port, int) else int(str(port or 0))
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", number)),
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("::1", number, 0, 0)),
        ]

    async def getnameinfo(self, sockaddr: object, flags: int) -> tuple[str, str]:
        raise NotImplementedError


@pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback on this machine")
async def test_ipv6_loopback_and_same_port_for_every_address() -> None:
    echo = EchoListener()
    previous = trio.socket.set_custom_hostname_resolver(DualLoopbackResolver())
    try:
        with trio.fail_after(10):
            # port=0 on a name with two addresses: both sockets share the picked port.
            async with TCPListener.new(0, echo, host="dual.test") as listener:
                for host in ("::1", "127.0.0.1"):
                    async with TCPConnection.new(host, listener.port) as conn:
                        await conn.send(b"over " + host.encode())
                        types, data = await collect(conn, 5 + len(host))
                    assert data == b"over " + host.encode()
                    assert_sequence(types)
    finally:
        trio.socket.set_custom_hostname_resolver(previous)
    assert {recorder.events[0].ip for recorder in echo.recorders} == {"::1", "127.0.0.1"}


@pytest.mark.parametrize("no_delay", [False, True])
async def test_accepted_sockets_get_the_no_delay_asked_for(no_delay: bool) -> None:
    # trio's SocketStream turns Nagle off; the transport sets the option only to change it.
    seen: list[int] = []

    async def serve(conn: TCPConnection) -> None:
        transport = conn._transport
        assert transport is not None
        sock = transport._sock  # type: ignore[attr-defined]
        seen.append(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

    with trio.fail_after(10):
        async with TCPListener.new(0, serve, host=HOST, no_delay=no_delay) as listener:
            stream = await trio.open_tcp_stream(HOST, listener.port)
            assert await stream.receive_some(8) == b""  # serve returned: the server closed
            await stream.aclose()
    assert seen == [int(no_delay)]
