"""An echo client that reads its connection's events with ``async for``.

``python echo_client_events.py PORT`` talks to an echo server already running on
127.0.0.1:PORT, for instance ``python -m trionet echo --tcp 9000``.  Without an argument it
starts a small echo server of its own on a free port, so that it runs anywhere.
"""

from __future__ import annotations

import sys

import trio

import trionet

MESSAGES = [b"first line\n", b"second line\n", b"third line\n"]


async def run_client(port: int) -> bytes:
    """Send every message, half-close, and collect the echo until the server closes."""
    expected = b"".join(MESSAGES)
    received = b""
    async with trionet.TCPConnection.new("127.0.0.1", port, no_delay=True) as conn:
        async for event in conn.events():
            if event.type == "connection":
                print(f"client: connected to {event.ip}:{event.port}")
                for message in MESSAGES:
                    await conn.send(message)
            elif event.type == "data":
                assert event.data is not None
                received += event.data
                if len(received) >= len(expected):
                    await conn.shutdown()  # FIN: the server sees "close" and closes too
            elif event.type == "close":
                print("client: the connection closed in order")
            elif event.type == "error":
                for record in event.errors:
                    print(f"client: error {record.err_code}: {record.message}")
            elif event.type == "terminate":
                print("client: released")
    return received


async def echo(conn: trionet.TCPConnection) -> None:
    """A minimal echo server for when no port is given."""
    async for event in conn.events():
        if event.type == "data":
            assert event.data is not None
            await conn.send(event.data)


async def main(port: int | None) -> None:
    with trio.fail_after(10):
        if port is not None:
            received = await run_client(port)
        else:
            async with trionet.TCPListener.new(0, echo, host="127.0.0.1") as listener:
                received = await run_client(listener.port)
                listener.terminate()
    print(f"client: {len(received)} bytes echoed: {received!r}")


if __name__ == "__main__":
    trio.run(main, int(sys.argv[1]) if len(sys.argv) > 1 else None)
