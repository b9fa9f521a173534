"""Four ways a connection ends, and what each one delivers.

1. ``terminate()``: an orderly end on request (``close`` then ``terminate``);
2. leaving the ``async with`` block: the same, and the block waits for it;
3. cancellation of the enclosing scope: the final callbacks still run, shielded;
4. a peer that never closes its side: the close timeout ends the wait, hard.

Run ``python ending_connections.py``; everything happens on 127.0.0.1 and ends in about
a second.
"""

from __future__ import annotations

from functools import partial

import trio

import trionet


class Recorder:
    """A handler that remembers the type of every event it receives."""

    def __init__(self) -> None:
        self.types: list[str] = []
        self.connected = trio.Event()
        self.got_data = trio.Event()

    def on_connection(self, conn: trionet.TCPConnection, event: trionet.TCPEvent) -> None:
        self.types.append(event.type.value)
        self.connected.set()

    def on_data(self, conn: trionet.TCPConnection, event: trionet.TCPEvent) -> None:
        self.types.append(event.type.value)
        self.got_data.set()

    def on_shutdown(self, conn: trionet.TCPConnection, event: trionet.TCPEvent) -> None:
        self.types.append(event.type.value)

    def on_error(self, conn: trionet.TCPConnection, event: trionet.TCPEvent) -> None:
        self.types.append(event.type.value)

    def on_terminate(self, conn: trionet.TCPConnection, event: trionet.TCPEvent) -> None:
        self.types.append(event.type.value)


async def echo(conn: trionet.TCPConnection) -> None:
    async for event in conn.events():
        if event.type == "data":
            assert event.data is not None
            await conn.send(event.data)


async def by_terminate(port: int) -> None:
    async with trionet.TCPConnection.new("127.0.0.1", port) as conn:
        async for event in conn.events():
            print(f"  event: {event.type}")
            if event.type == "connection":
                conn.terminate()  # idempotent; callable from any task or thread
    print(f"  closed={conn.closed} errors={conn.errors}")


async def by_leaving_the_block(port: int) -> None:
    recorder = Recorder()
    async with trionet.TCPConnection.new("127.0.0.1", port, recorder) as conn:
        await recorder.connected.wait()
        await conn.send(b"bye")
        await recorder.got_data.wait()  # the echo is back
    # The block has waited: on_terminate already ran, the socket is closed.
    print(f"  events: {recorder.types}, closed={conn.closed}")


async def by_cancellation(port: int) -> None:
    recorder = Recorder()
    with trio.CancelScope() as scope:
        async with trionet.TCPConnection.new("127.0.0.1", port, recorder):
            await recorder.connected.wait()
            scope.deadline = trio.current_time() + 0.2
            await trio.sleep_forever()  # cancelled 0.2 s after the connection is up
    print(f"  cancelled={scope.cancelled_caught} events: {recorder.types}")


async def by_close_timeout() -> None:
    # A peer that accepts but never reads and never closes its side.
    async def mute(stream: trio.SocketStream) -> None:
        await trio.sleep_forever()

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, mute, 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        recorder = Recorder()
        async with trionet.TCPConnection.new(
            "127.0.0.1", port, recorder, close_timeout=0.5
        ) as conn:
            await recorder.connected.wait()
        # We sent FIN and waited 0.5 s for the peer's; then the socket was closed hard.
        print(f"  events: {recorder.types}")
        for record in conn.errors:
            print(f"  error record: {trionet.ErrorCode(record.err_code).name}")
        nursery.cancel_scope.cancel()


async def main() -> None:
    with trio.fail_after(10):
        async with trionet.TCPListener.new(0, echo, host="127.0.0.1") as listener:
            print("1. terminate()")
            await by_terminate(listener.port)
            print("2. leaving the block")
            await by_leaving_the_block(listener.port)
            print("3. cancellation")
            await by_cancellation(listener.port)
            listener.terminate()
        print("4. close timeout")
        await by_close_timeout()


if __name__ == "__main__":
    trio.run(main)
