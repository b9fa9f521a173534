"""Sending before the connection is up, and half-closing with ``shutdown()``.

The client sends its whole request at once, before the connect has finished, then calls
``shutdown()`` to say "that is all": the server reads until the client's FIN (a ``close``
event), answers with a summary on the still-open direction, and then closes its side.

Run ``python half_close.py``; it serves on a free port of 127.0.0.1, once with a serve
function and once with a handler object, and exits.
"""

from __future__ import annotations

import trio

import trionet

REQUEST = [b"alpha ", b"beta ", b"gamma"]


async def summarize(conn: trionet.TCPConnection) -> None:
    """Serve function: count until the client half-closes, then answer."""
    size = 0
    async for event in conn.events():
        if event.type == "data":
            assert event.data is not None
            size += len(event.data)
        elif event.type == "close":
            # The peer sent FIN.  We may still send until we ask for the next event.
            await conn.send(b"received %d bytes" % size)
    # The loop's next step after "close" let trionet close our side; "terminate" came last.


class SummaryHandler:
    """Handler object: the same server; on_shutdown may send until it returns."""

    def __init__(self) -> None:
        self.size = 0

    def on_data(self, conn: trionet.TCPConnection, event: trionet.TCPEvent) -> None:
        assert event.data is not None
        self.size += len(event.data)

    async def on_shutdown(self, conn: trionet.TCPConnection, event: trionet.TCPEvent) -> None:
        await conn.send(b"received %d bytes" % self.size)


class SummaryServer:
    def on_connection(
        self, listener: trionet.TCPListener, event: trionet.TCPEvent
    ) -> SummaryHandler:
        return SummaryHandler()


async def request(port: int) -> None:
    async with trionet.TCPConnection.new("127.0.0.1", port) as conn:
        # The block is entered before the connect finishes: these sends are queued and
        # go out, in order, as soon as the connection is up.
        for part in REQUEST:
            await conn.send(part)
        # Half-close: waits for the connect, flushes the queue, sends FIN.  We can no
        # longer send, but we keep receiving until the server closes its side.
        await conn.shutdown()
        reply = b""
        async for event in conn.events():
            if event.type == "data":
                assert event.data is not None
                reply += event.data
            elif event.type in ("close", "error"):
                print(f"  client event: {event.type}")
    print(f"  reply: {reply.decode()}")
    assert conn.closed
    assert not conn.errors


async def main() -> None:
    with trio.fail_after(10):
        for name, handler in [("serve function", summarize), ("handler", SummaryServer())]:
            print(name)
            async with trionet.TCPListener.new(0, handler, host="127.0.0.1") as listener:
                await request(listener.port)
                listener.terminate()


if __name__ == "__main__":
    trio.run(main)
