"""Stopping a listener from another thread.

``TCPListener.terminate()`` and ``TCPConnection.terminate()`` may be called from any
thread: they hand the work to the trio thread that runs the listener or connection.  Here
an "operator" thread (think of a GUI, a signal from some other framework, or a blocking
admin console) stops a running server.

Run ``python terminate_from_thread.py``; it serves on a free port of 127.0.0.1 and exits
once the other thread has stopped the server.
"""

from __future__ import annotations

import threading

import trio

import trionet


async def echo(conn: trionet.TCPConnection) -> None:
    async for event in conn.events():
        if event.type == "data":
            assert event.data is not None
            await conn.send(event.data)


def operator(listener: trionet.TCPListener, go: threading.Event) -> None:
    """Runs in a plain thread: waits for a signal, then stops the server."""
    go.wait(timeout=10)
    print(f"operator thread {threading.current_thread().name}: terminating the listener")
    listener.terminate()  # thread-safe: scheduled in the listener's trio thread


async def main() -> None:
    with trio.fail_after(10):
        async with trionet.TCPListener.new(0, echo, host="127.0.0.1") as listener:
            go = threading.Event()
            thread = threading.Thread(target=operator, args=(listener, go), name="operator")
            thread.start()
            async with trionet.TCPConnection.new("127.0.0.1", listener.port) as conn:
                async for event in conn.events():
                    print(f"client event: {event.type}")
                    if event.type == "connection":
                        await conn.send(b"ping")
                    elif event.type == "data":
                        go.set()  # the server works: ask the operator to stop it
            # The server ended our connection in order: close, then terminate.
            await listener.wait()  # returns once the listener and its connections ended
            await trio.to_thread.run_sync(thread.join)
        print(f"listener terminated: {listener.terminated}")


if __name__ == "__main__":
    trio.run(main)
