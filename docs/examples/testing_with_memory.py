"""Testing handlers without sockets, with ``trionet.testing`` and trio's ``MockClock``.

Each ``test_*`` function below is what a test in your own suite looks like; with
pytest-trio they run as they are (use its ``autojump_clock`` fixture for virtual time).
Run ``python testing_with_memory.py`` to run them all here, each on a virtual clock that
jumps ahead whenever every task is waiting, so the timeouts cost no real time.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import trio
import trio.testing

import trionet
from trionet.testing import (
    EventRecorder,
    open_connection_pair,
    open_memory_listener,
    open_memory_websocket_server,
)


class UpperCase:
    """The handler under test: answers every chunk in upper case."""

    async def on_data(self, conn: trionet.TCPConnection, event: trionet.TCPEvent) -> None:
        assert event.data is not None
        await conn.send(event.data.upper())


class UpperCaseServer:
    def on_connection(self, listener: trionet.TCPListener, event: trionet.TCPEvent) -> UpperCase:
        return UpperCase()


async def test_answers_in_upper_case() -> None:
    client = EventRecorder()
    async with open_connection_pair(client, UpperCase()) as pair:
        await pair.a.send(b"hello")
        assert await client.wait_for_bytes(5) == b"HELLO"
        await pair.a.shutdown()
        await client.wait_for("terminate")
    assert client.types == ["connection", "data", "close", "terminate"]


async def test_fragmented_input() -> None:
    # TCP may split data anywhere: make the server side receive 1..3 bytes at a time.
    client = EventRecorder()
    async with open_connection_pair(client, UpperCase(), seed=42) as pair:
        pair.b_stream.max_chunk = 3
        await pair.a.send(b"fragmented")
        assert await client.wait_for_bytes(10) == b"FRAGMENTED"
    assert len([event for event in client.events if event.type == "data"]) > 1


async def test_peer_reset_is_an_error_event() -> None:
    client = EventRecorder()
    async with open_connection_pair(client, UpperCase()) as pair:
        await client.wait_for("connection")
        pair.b_stream.reset()  # the server side's TCP resets the connection
        error = await client.wait_for("error")
    assert error.errors[0].err_code == trionet.ErrorCode.CONNECTION_BROKEN
    assert client.types == ["connection", "error", "terminate"]


async def test_vanished_peer_costs_the_close_timeout() -> None:
    client = EventRecorder()
    start = trio.current_time()
    async with open_connection_pair(client, UpperCase(), close_timeout=5) as pair:
        await client.wait_for("connection")
        pair.a_stream.vanish()  # no more data, FIN or reset: the peer is just gone
        pair.a.terminate()
        await client.wait_for("terminate")
        assert 5 <= trio.current_time() - start < 6  # virtual seconds: instant in real time
    assert pair.a.errors[-1].err_code == trionet.ErrorCode.CLOSE_TIMEOUT


async def test_listener_serves_several_clients() -> None:
    async with open_memory_listener(UpperCaseServer()) as network:
        for word in (b"one", b"two"):
            client = EventRecorder()
            async with network.connect(client) as conn:
                await conn.send(word)
                assert await client.wait_for_bytes(len(word)) == word.upper()
        # A raw stream plays a peer byte by byte, when a test needs full control.
        stream = await network.connect_stream()
        await stream.send_all(b"raw")
        assert await stream.receive_some(10) == b"RAW"
        await stream.aclose()


class Shout:
    """A WebSocket handler under test: answers every message in upper case."""

    async def on_message(
        self, ws: trionet.WebSocketConnection, event: trionet.WebSocketEvent
    ) -> None:
        await ws.send(event.data.upper())


class ShoutServer:
    def on_connection(self, wss: trionet.WebSocketServer, event: trionet.WebSocketEvent) -> Shout:
        return Shout()


async def test_websocket_handler() -> None:
    async with open_memory_websocket_server(ShoutServer()) as network:
        client = EventRecorder()
        async with network.connect(client) as memory:
            await client.wait_for("open")
            await memory.ws.send("hello")
            await client.wait_for("message")
            await memory.ws.terminate(4000, "bye")
        assert client.messages == ["HELLO"]
        assert client.types == ["open", "message", "terminate"]
        assert client.events[-1].code == 4000


TESTS = [
    test_answers_in_upper_case,
    test_fragmented_input,
    test_peer_reset_is_an_error_event,
    test_vanished_peer_costs_the_close_timeout,
    test_listener_serves_several_clients,
    test_websocket_handler,
]


async def bounded(test: Callable[[], Awaitable[None]]) -> None:
    # On the autojump clock a test that hangs reaches this deadline at once.
    with trio.fail_after(60):
        await test()


def main() -> None:
    for test in TESTS:
        clock = trio.testing.MockClock(autojump_threshold=0)
        trio.run(bounded, test, clock=clock)
        print(f"passed: {test.__name__}")


if __name__ == "__main__":
    main()
