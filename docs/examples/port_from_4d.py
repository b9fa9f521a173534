"""4D's TCPListener example, ported to trionet with its 4D (camelCase) callback names.

The 4D version is a user class that creates the listener in its constructor and filters
clients by address in ``onConnection``.  In trionet the listener lives in an
``async with`` block instead, and the handler classes keep their 4D method names, so a 4D
class ports almost line by line.  The handlers are left without type annotations here,
to stay close to the 4D code; trionet's own types are ``TCPConnection``,
``TCPListener`` and ``TCPEvent``.

Run ``python port_from_4d.py``; it serves on a free port of 127.0.0.1, connects a client
written the same way, and exits.
"""

from __future__ import annotations

import trio

import trionet


class MyAsyncTCPConnection:
    """Connection handler: the 4D callbacks, under their 4D names."""

    def __init__(self, name):
        self.name = name

    def onConnection(self, conn, event):
        print(f"{self.name}: connected to {event.ip}:{event.port}")

    async def onData(self, conn, event):
        print(f"{self.name}: received {event.data.decode()!r}")
        if conn.listener is not None:  # server side: answer
            await conn.send(b"info: " + event.data)
        else:  # client side: we got our answer
            await conn.shutdown()

    def onShutdown(self, conn, event):
        print(f"{self.name}: connection closed")

    def onError(self, conn, event):
        for error in event.errors:
            print(f"{self.name}: error {error.errCode}: {error.message}")

    def onTerminate(self, conn, event):
        print(f"{self.name}: released")


class MyServer:
    """Listener handler: 4D's example, minus the constructor that listens."""

    def __init__(self, allowed_prefix):
        self.allowed_prefix = allowed_prefix

    def onConnection(self, listener, event):
        if not event.ip.startswith(self.allowed_prefix):
            return None  # turn the client away
        return MyAsyncTCPConnection("server")

    def onError(self, listener, event):
        print("listener error:", event.errors)

    def onTerminate(self, listener, event):
        print("listener: terminated")


async def main() -> None:
    with trio.fail_after(10):
        # 4D: This.listener:=4D.TCPListener.new($port; This)
        async with trionet.TCPListener.new(0, MyServer("127."), host="127.0.0.1") as listener:
            # 4D: 4D.TCPConnection.new($address; $port; This), then send a Blob
            client = MyAsyncTCPConnection("client")
            async with trionet.TCPConnection.new("127.0.0.1", listener.port, client) as conn:
                await conn.send(b"getInfo")
                await conn.wait(5)  # 4D: $connection.wait(5)
            # 4D: This.listener.terminate()
            listener.terminate()

        # A 4D options object becomes a mapping of callback names to functions.
        received: list[bytes] = []
        options = {"onData": lambda conn, event: received.append(event.data)}
        server = {"onConnection": lambda listener, event: options}
        async with trionet.TCPListener.new(0, server, host="127.0.0.1") as listener:
            async with trionet.TCPConnection.new("127.0.0.1", listener.port) as conn:
                await conn.send(b"from a mapping")
                await conn.shutdown()
                await conn.wait(5)
            listener.terminate()
        print(f"mapping handler received {received!r}")


if __name__ == "__main__":
    trio.run(main)
