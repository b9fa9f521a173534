"""An echo server written with handler objects (the 4D style).

Run ``python echo_server_handler.py``: it listens on 127.0.0.1 on a port the system picks,
connects to itself once to check that the echo works, then stops the listener and exits.
"""

from __future__ import annotations

import trio

import trionet


class EchoConnection:
    """Handles one accepted connection: every chunk received is sent back."""

    def on_connection(self, conn: trionet.TCPConnection, event: trionet.TCPEvent) -> None:
        print(f"server: {event.ip}:{event.port} connected")

    async def on_data(self, conn: trionet.TCPConnection, event: trionet.TCPEvent) -> None:
        assert event.data is not None
        await conn.send(event.data)

    def on_shutdown(self, conn: trionet.TCPConnection, event: trionet.TCPEvent) -> None:
        print("server: the connection is closing")

    def on_error(self, conn: trionet.TCPConnection, event: trionet.TCPEvent) -> None:
        for record in event.errors:
            print(f"server: error {record.err_code}: {record.message}")

    def on_terminate(self, conn: trionet.TCPConnection, event: trionet.TCPEvent) -> None:
        print("server: connection released")


class EchoServer:
    """Handles the listener: accepts every connection with a new EchoConnection."""

    def on_connection(
        self, listener: trionet.TCPListener, event: trionet.TCPEvent
    ) -> EchoConnection | None:
        return EchoConnection()  # return None instead to refuse the connection

    def on_error(self, listener: trionet.TCPListener, event: trionet.TCPEvent) -> None:
        print("server: listener error:", event.errors)

    def on_terminate(self, listener: trionet.TCPListener, event: trionet.TCPEvent) -> None:
        print("server: listener closed")


async def check_echo(port: int) -> None:
    """Connect once, send a greeting, and read it back."""
    async with trionet.TCPConnection.new("127.0.0.1", port) as conn:
        received = b""
        async for event in conn.events():
            if event.type == "connection":
                await conn.send(b"hello, trionet")
            elif event.type == "data":
                assert event.data is not None
                received += event.data
                if received == b"hello, trionet":
                    await conn.shutdown()  # we are done sending
    print(f"client: echoed {received!r}")


async def main() -> None:
    with trio.fail_after(10):
        async with trionet.TCPListener.new(0, EchoServer(), host="127.0.0.1") as listener:
            print(f"server: listening on port {listener.port}")
            await check_echo(listener.port)
            listener.terminate()


if __name__ == "__main__":
    trio.run(main)
