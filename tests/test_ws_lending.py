"""Lent reading on WebSocket connections: an ``events()`` consumer that keeps up reads.

Over loopback sockets, against the raw frame client and trio-websocket: once the consumer
keeps up, its own task reads and parses frames (``_wstask.pull``).  Pings are still
answered, a close frame, a protocol error and a dropped TCP connection still end the
connection as without lending, answers are never held back (the consumer may go away
right after sending), and nothing is lost when the connection ends.
"""

from __future__ import annotations

import contextlib
import struct
from typing import Any

import trio
import trio_websocket

import trionet

from .wshelpers import (
    OP_CLOSE,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    TIMEOUT,
    close_frame,
    frame,
    raw_client,
    serve,
)


class EventsEcho:
    """``async def serve(ws)``: echo every message, record every event."""

    def __init__(self) -> None:
        self.events: list[Any] = []
        self.conn: trionet.WebSocketConnection | None = None
        self.done = trio.Event()

    async def serve(self, ws: trionet.WebSocketConnection) -> None:
        self.conn = ws
        try:
            async for event in ws.events():
                self.events.append(event)
                if event.type == "message":
                    # Messages that came before the peer's close frame are delivered, but
                    # the connection is closing by then: their answers may be refused.
                    with contextlib.suppress(trionet.ConnectionClosedError):
                        await ws.send(event.data)
        finally:
            self.done.set()

    @property
    def types(self) -> list[str]:
        return [event.type.value for event in self.events]

    @property
    def lent(self) -> bool:
        assert self.conn is not None
        assert self.conn._lending is not None
        return self.conn._lending.queue.lent


async def echo_round_trips(client: Any, count: int) -> None:
    for i in range(count):
        await client.send(frame(OP_TEXT, b"m%d" % i))
        got = await client.read_frame()
        assert got is not None
        assert got[1:] == (OP_TEXT, b"m%d" % i)


async def test_ping_close_and_events_while_the_consumer_reads() -> None:
    echo = EventsEcho()
    with trio.fail_after(TIMEOUT):
        async with serve(echo.serve) as wss, raw_client(wss.port) as client:
            await echo_round_trips(client, 10)
            assert echo.lent
            await client.send(frame(OP_PING, b"are you there"))
            got = await client.read_frame()
            assert got is not None
            assert got[1:] == (OP_PONG, b"are you there")
            await client.send(close_frame(1000, b"done"))
            assert await client.read_close() == (1000, "done")
            await client.finish()
            await echo.done.wait()
    assert echo.types == ["open"] + ["message"] * 10 + ["terminate"]
    assert echo.events[-1].code == 1000


async def test_messages_before_a_close_frame_in_one_chunk_all_arrive() -> None:
    echo = EventsEcho()
    with trio.fail_after(TIMEOUT):
        async with serve(echo.serve) as wss, raw_client(wss.port) as client:
            await echo_round_trips(client, 3)
            assert echo.lent
            burst = b"".join(frame(OP_TEXT, b"b%d" % i) for i in range(5)) + close_frame(1000)
            await client.send(burst)
            assert await client.read_close() == (1000, "")
            await client.finish()
            await echo.done.wait()
    assert echo.types == ["open"] + ["message"] * 8 + ["terminate"]
    assert [event.data for event in echo.events[-6:-1]] == [f"b{i}" for i in range(5)]


async def test_a_protocol_error_while_lent_closes_with_1002() -> None:
    echo = EventsEcho()
    with trio.fail_after(TIMEOUT):
        async with (
            serve(echo.serve, compression=False) as wss,
            raw_client(wss.port) as client,
        ):
            await echo_round_trips(client, 3)
            assert echo.lent
            await client.send(frame(OP_TEXT, b"x", rsv=0b100))  # RSV1 without an extension
            code, _reason = await client.read_close()
            assert code == 1002
            await client.send(close_frame(1002))
            await client.finish()
            await echo.done.wait()
    assert echo.types == ["open"] + ["message"] * 3 + ["error", "terminate"]
    assert echo.events[-1].code == 1002


async def test_a_dropped_tcp_connection_while_lent_is_1006() -> None:
    echo = EventsEcho()
    with trio.fail_after(TIMEOUT):
        async with serve(echo.serve) as wss:
            async with raw_client(wss.port) as client:
                await echo_round_trips(client, 3)
                assert echo.lent
            await echo.done.wait()
    assert echo.types[-1] == "terminate"
    assert echo.events[-1].code == 1006


async def test_an_answer_is_not_held_back_by_a_consumer_that_goes_away() -> None:
    # The consumer answers, then waits for something else instead of asking for the next
    # event: its corked answer must still go out (the network task flushes it).
    answered = trio.Event()
    release = trio.Event()

    async def serve_then_wait(ws: trionet.WebSocketConnection) -> None:
        events = ws.events()
        async for event in events:
            if event.type == "message":
                await ws.send(event.data)
                if event.data == "wait":
                    await release.wait()  # not reading: only the network task can flush

    with trio.fail_after(TIMEOUT):
        async with serve(serve_then_wait) as wss, raw_client(wss.port) as client:
            for text in (b"a", b"b", b"wait"):
                await client.send(frame(OP_TEXT, text))
                got = await client.read_frame()
                assert got is not None
                assert got[2] == text
            answered.set()
            release.set()
            await client.send(close_frame(1000))
            assert await client.read_close() == (1000, "")
    assert answered.is_set()


async def test_the_last_answer_goes_out_before_the_close_frame() -> None:
    # serve() returns right after a corked send: the answer precedes the 1000 close frame.
    async def answer_once(ws: trionet.WebSocketConnection) -> None:
        async for event in ws.events():
            if event.type == "message":
                await ws.send(event.data)
                if event.data == "bye":
                    return

    with trio.fail_after(TIMEOUT):
        async with serve(answer_once) as wss, raw_client(wss.port) as client:
            for text in (b"one", b"two", b"bye"):
                await client.send(frame(OP_TEXT, text))
            frames = []
            while True:
                got = await client.read_frame()
                assert got is not None
                frames.append(got[1:])
                if got[1] == OP_CLOSE:
                    break
    assert frames == [
        (OP_TEXT, b"one"),
        (OP_TEXT, b"two"),
        (OP_TEXT, b"bye"),
        (OP_CLOSE, struct.pack("!H", 1000)),
    ]


async def test_trio_websocket_peer_pings_and_many_messages() -> None:
    echo = EventsEcho()
    with trio.fail_after(TIMEOUT):
        async with serve(echo.serve) as wss:
            url = f"ws://127.0.0.1:{wss.port}/"
            async with trio_websocket.open_websocket_url(url) as ws:
                for i in range(200):
                    await ws.send_message(f"message {i}")
                    assert await ws.get_message() == f"message {i}"
                assert echo.lent
                with trio.fail_after(5):
                    await ws.ping(b"ping!")  # returns once our pong arrived
                window = [f"w{i}" for i in range(64)]
                for text in window:
                    await ws.send_message(text)
                assert [await ws.get_message() for _ in window] == window
            await echo.done.wait()
    assert echo.types == ["open"] + ["message"] * 264 + ["terminate"]
    assert echo.events[-1].code == 1000


async def test_terminate_while_the_consumer_reads() -> None:
    echo = EventsEcho()
    with trio.fail_after(TIMEOUT):
        async with serve(echo.serve) as wss, raw_client(wss.port) as client:
            await echo_round_trips(client, 3)
            await trio.testing.wait_all_tasks_blocked()
            assert echo.lent
            assert echo.conn is not None
            echo.conn.terminate(4001, "bye now")
            assert await client.read_close() == (4001, "bye now")
            await client.send(close_frame(4001))
            await client.finish()
            await echo.done.wait()
    assert echo.types == ["open"] + ["message"] * 3 + ["terminate"]
    assert echo.events[-1].code == 4001
