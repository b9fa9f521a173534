"""The same line server written twice: as a serve function and as a handler object.

Both answer every line a client sends with the line in upper case.  TCP keeps the order of
bytes but not the boundaries of sends, so both keep the unfinished end of a line until the
rest arrives.

Run ``python serve_function.py``: it starts each server on a free port of 127.0.0.1, sends
the same lines to both, prints the answers and exits.
"""

from __future__ import annotations

import trio

import trionet

LINES = [b"hello\n", b"split ", b"across sends\n", b"bye\n"]


# -- style 1: a serve function (one task per connection, trio style) ----------------------


async def shout(conn: trionet.TCPConnection) -> None:
    """Serve one connection; its state is just local variables."""
    pending = b""
    async for event in conn.events():
        if event.type == "data":
            assert event.data is not None
            pending += event.data
            *lines, pending = pending.split(b"\n")
            for line in lines:
                await conn.send(line.upper() + b"\n")
    # Returning ends the connection (it already has, once terminate was received).


# -- style 2: handler objects (callbacks, 4D style) ----------------------------------------


class ShoutConnection:
    """Per-connection state lives on the handler object."""

    def __init__(self) -> None:
        self.pending = b""

    async def on_data(self, conn: trionet.TCPConnection, event: trionet.TCPEvent) -> None:
        assert event.data is not None
        self.pending += event.data
        *lines, self.pending = self.pending.split(b"\n")
        for line in lines:
            await conn.send(line.upper() + b"\n")


class ShoutServer:
    def on_connection(
        self, listener: trionet.TCPListener, event: trionet.TCPEvent
    ) -> ShoutConnection:
        return ShoutConnection()


# -- a client for both ---------------------------------------------------------------------


async def ask(port: int) -> bytes:
    """Send LINES, half-close, and return everything the server answered."""
    answer = b""
    async with trionet.TCPConnection.new("127.0.0.1", port) as conn:
        for line in LINES:
            await conn.send(line)  # allowed before the connect finishes: queued
        await conn.shutdown()  # waits for the connect, flushes, sends FIN
        async for event in conn.events():
            if event.type == "data":
                assert event.data is not None
                answer += event.data
    return answer


async def main() -> None:
    with trio.fail_after(10):
        for name, handler in [("serve function", shout), ("handler object", ShoutServer())]:
            async with trionet.TCPListener.new(0, handler, host="127.0.0.1") as listener:
                answer = await ask(listener.port)
                listener.terminate()
            print(f"{name}: {answer!r}")


if __name__ == "__main__":
    trio.run(main)
