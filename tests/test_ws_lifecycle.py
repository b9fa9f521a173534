"""Every way a WebSocket connection ends reaches Closed and terminate, within the close timeout.

Memory streams and trio's autojump clock: timeouts of seconds take no real time, and
faults (reset, vanish, stall) are injected exactly where the test wants them.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import trio
import trio.testing

import trionet
from trionet.testing import EventRecorder, open_memory_websocket_server

CLOSE = 2.0  # close_timeout for these tests (seconds of trio's clock)
GRAMMAR = re.compile(r"open(,message)*(,error)?,terminate|error,terminate")


def grammar(recorder: EventRecorder) -> str:
    return ",".join(recorder.types)


class Server:
    """Accepts every connection with a recorder; keeps them for the test."""

    def __init__(self, *, echo: bool = True, fail_on: str | None = None) -> None:
        self.recorders: list[EventRecorder] = []
        self.echo = echo
        self.fail_on = fail_on

    def on_connection(self, wss: trionet.WebSocketServer, event: trionet.WebSocketEvent) -> Any:
        recorder = Failing(self.fail_on, echo=self.echo)
        self.recorders.append(recorder)
        return recorder


class Failing(EventRecorder):
    """A recorder whose on_message raises for one message text."""

    def __init__(self, fail_on: str | None, *, echo: bool) -> None:
        super().__init__(echo=echo)
        self.fail_on = fail_on

    async def on_message(self, ws: Any, event: Any) -> None:
        if event.data == self.fail_on:
            self.add(event)
            raise RuntimeError("boom")
        await self._record(ws, event)


@pytest.fixture
def clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


async def opened(recorder: EventRecorder) -> None:
    await recorder.wait_for("open")


async def test_client_terminate_completes_the_handshake(autojump_clock: Any) -> None:
    server = Server()
    async with open_memory_websocket_server(server, close_timeout=CLOSE) as net:
        client = EventRecorder()
        async with net.connect(client) as c:
            await client.wait_for("open")
            await c.ws.send("hello")
            await client.wait_for("message")
            started = trio.current_time()
            with trio.fail_after(CLOSE):
                await c.ws.terminate(4000, "done")
            assert trio.current_time() - started < CLOSE
        with trio.fail_after(CLOSE):
            await server.recorders[0].wait_for("terminate")
    end = server.recorders[0].events[-1]
    assert grammar(server.recorders[0]) == "open,message,terminate"
    assert (end.code, end.reason) == (4000, "done")
    assert client.events[-1].code == 4000
    assert c.ws.status == "Closed"
    assert net.server.connections == []


async def test_reason_only_sent_above_3000(autojump_clock: Any) -> None:
    server = Server()
    async with open_memory_websocket_server(server, close_timeout=CLOSE) as net:
        client = EventRecorder()
        async with net.connect(client) as c:
            await client.wait_for("open")
            await c.ws.terminate(1000, "ignored, as in 4D")
        await server.recorders[0].wait_for("terminate")
    assert (server.recorders[0].events[-1].code, server.recorders[0].events[-1].reason) == (
        1000,
        "",
    )


async def test_server_terminate_sends_1001_to_everyone(autojump_clock: Any) -> None:
    server = Server()
    clients = [EventRecorder() for _ in range(3)]
    async with open_memory_websocket_server(server, close_timeout=CLOSE) as net:
        async with net.connect(clients[0]), net.connect(clients[1]), net.connect(clients[2]):
            for client in clients:
                await client.wait_for("open")
            started = trio.current_time()
            with trio.fail_after(CLOSE):
                await net.server.terminate()
            assert trio.current_time() - started < CLOSE
            assert net.server.terminated
            for client in clients:
                with trio.fail_after(CLOSE):  # the server closed TCP first; clients follow
                    await client.wait_for("terminate")
                assert client.events[-1].code == 1001
    for recorder in server.recorders:
        assert GRAMMAR.fullmatch(grammar(recorder))
        assert recorder.events[-1].code == 1001


async def test_reset_gives_error_then_1006(autojump_clock: Any) -> None:
    server = Server()
    async with open_memory_websocket_server(server, close_timeout=CLOSE) as net:
        async with net.connect(EventRecorder()) as c:
            await trio.testing.wait_all_tasks_blocked()
            await opened(server.recorders[0])
            c.stream.reset()
            with trio.fail_after(CLOSE):
                await server.recorders[0].wait_for("terminate")
    recorder = server.recorders[0]
    assert grammar(recorder) == "open,error,terminate"
    assert recorder.events[-1].code == 1006


async def test_vanished_peer_is_cut_off_within_the_close_timeout(autojump_clock: Any) -> None:
    server = Server()
    async with open_memory_websocket_server(server, close_timeout=CLOSE, ping_interval=None) as net:
        async with net.connect(EventRecorder(), ping_interval=None) as c:
            await trio.testing.wait_all_tasks_blocked()
            await opened(server.recorders[0])
            c.stream.vanish()
            conn = net.server.connections[0]
            started = trio.current_time()
            conn.terminate()
            with trio.fail_after(CLOSE + 0.5):
                await server.recorders[0].wait_for("terminate")
            assert trio.current_time() - started <= CLOSE + 0.01
    recorder = server.recorders[0]
    assert GRAMMAR.fullmatch(grammar(recorder))
    assert recorder.events[-1].code == 1006
    assert any(r.err_code == trionet.ErrorCode.CLOSE_TIMEOUT for r in conn.errors)


async def test_keepalive_declares_a_silent_peer_dead(autojump_clock: Any) -> None:
    server = Server()
    async with open_memory_websocket_server(
        server, ping_interval=1.0, ping_timeout=1.0, close_timeout=CLOSE
    ) as net:
        async with net.connect(EventRecorder(), ping_interval=None) as c:
            await trio.testing.wait_all_tasks_blocked()
            await opened(server.recorders[0])
            c.stream.vanish()
            with trio.fail_after(1.0 + 1.0 + CLOSE + 5.0):
                await server.recorders[0].wait_for("terminate")
    recorder = server.recorders[0]
    assert grammar(recorder) == "open,error,terminate"
    assert recorder.events[1].errors[0].err_code == trionet.ErrorCode.KEEPALIVE_TIMEOUT


async def test_keepalive_keeps_a_quiet_healthy_peer(autojump_clock: Any) -> None:
    server = Server()
    async with open_memory_websocket_server(
        server, ping_interval=1.0, ping_timeout=1.0, close_timeout=CLOSE
    ) as net:
        client = EventRecorder()
        async with net.connect(client, ping_interval=None) as c:
            await client.wait_for("open")
            await trio.sleep(30)  # many ping intervals of silence: pongs keep it alive
            assert c.ws.status == "Connected"
            assert [r.types for r in server.recorders] == [["open"]]


async def test_handler_error_closes_only_that_connection_with_1011(autojump_clock: Any) -> None:
    server = Server(fail_on="boom")
    async with open_memory_websocket_server(server, close_timeout=CLOSE) as net:
        a, b = EventRecorder(), EventRecorder()
        async with net.connect(a) as ca, net.connect(b) as cb:
            await a.wait_for("open")
            await b.wait_for("open")
            await ca.ws.send("boom")
            with trio.fail_after(CLOSE):
                await a.wait_for("terminate")
            assert a.events[-1].code == 1011
            await cb.ws.send("still here")
            assert await b.wait_for("message") is not None
            assert b.messages == ["still here"]
    failed = next(r for r in server.recorders if "boom" in r.messages)
    assert grammar(failed) == "open,message,error,terminate"
    assert failed.events[-1].code == 1011


async def test_cancelling_the_scope_still_delivers_terminate(autojump_clock: Any) -> None:
    server = Server()
    client = EventRecorder()
    async with open_memory_websocket_server(server, close_timeout=CLOSE) as net:
        with trio.move_on_after(1.0):
            async with net.connect(client):
                await trio.sleep_forever()
    assert GRAMMAR.fullmatch(grammar(client))
    assert client.events[-1].code == 1000
    assert GRAMMAR.fullmatch(grammar(server.recorders[0]))


async def test_terminate_is_not_blocked_by_a_full_queue(autojump_clock: Any) -> None:
    """A serve() that never reads its events: the server still ends within the timeout."""
    stuck = trio.Event()

    async def serve(ws: trionet.WebSocketConnection) -> None:
        stuck.set()
        await trio.sleep_forever()

    async with open_memory_websocket_server(serve, close_timeout=CLOSE, max_queue=2) as net:
        client = EventRecorder()
        async with net.connect(client) as c:
            await stuck.wait()
            for i in range(40):  # past the queue (2) and the read-ahead (2 more)
                await c.ws.send(f"message {i} " + "x" * 1000)
            await trio.testing.wait_all_tasks_blocked()
            started = trio.current_time()
            with trio.fail_after(CLOSE + 0.5):
                await net.server.terminate()
            assert trio.current_time() - started <= CLOSE
    assert client.events[-1].type == "terminate"


async def test_broadcast_reaches_all_but_the_stalled_one(autojump_clock: Any) -> None:
    server = Server(echo=False)
    async with open_memory_websocket_server(
        server, close_timeout=CLOSE, broadcast_backlog=4, send_timeout=30.0, compression=False
    ) as net:
        fast, slow = EventRecorder(), EventRecorder()
        async with net.connect(fast) as cf, net.connect(slow) as cs:
            await fast.wait_for("open")
            await slow.wait_for("open")
            cs.stream.stall()  # the slow client stops reading
            big = "x" * 50_000
            for i in range(8):
                assert net.server.broadcast(f"{i}:{big}") in (1, 2)
                await trio.sleep(0.1)
            with trio.fail_after(5):
                await fast.wait_for("message", count=8)
            assert [m.split(":")[0] for m in fast.messages] == [str(i) for i in range(8)]
            assert cf.ws.status == "Connected"
    codes = {r.events[-1].code for r in server.recorders}
    assert 1008 in codes


async def test_keepalive_does_not_blame_the_peer_while_we_do_not_read(autojump_clock: Any) -> None:
    """The application is slow (its queue is full): its peer is not declared dead."""

    async def serve(ws: trionet.WebSocketConnection) -> None:
        await trio.sleep_forever()  # never reads its events

    async with open_memory_websocket_server(
        serve, max_queue=2, ping_interval=1.0, ping_timeout=1.0, close_timeout=CLOSE
    ) as net:
        client = EventRecorder()
        async with net.connect(client, ping_interval=None) as c:
            await client.wait_for("open")
            for i in range(40):  # past the queue and the read-ahead: the server stops reading
                await c.ws.send(f"message {i} " + "x" * 1000)
            await trio.sleep(60)  # sixty ping intervals
            assert c.ws.status == "Connected"
            assert net.server.connections[0].status == "Connected"
