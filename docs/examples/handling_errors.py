"""Where failures show up: error events, ``errors`` records, and exceptions.

* A failure on the network (refused connect, reset, timeout) is an ``error`` event whose
  ``errors`` say what happened; the same records stay in ``conn.errors``.
* A callback that raises ends only its own connection, with an ``error`` event; the
  listener keeps serving the others.
* Exceptions are for mistakes made by the caller: a port that cannot be bound
  (``ListenError``), ``send()`` on a closed connection (``ConnectionClosedError``), bad
  arguments (``ValueError``/``TypeError``).

Run ``python handling_errors.py``; it works on 127.0.0.1 only and exits.
"""

from __future__ import annotations

import errno
import logging
import socket

import trio

import trionet


def describe(record: trionet.ErrorRecord) -> str:
    """One line for an error record: the code by name when trionet defines it."""
    try:
        code = trionet.ErrorCode(record.err_code).name
    except ValueError:
        code = errno.errorcode.get(record.err_code, str(record.err_code))
    return f"{code} from {record.component_signature!r}: {record.message}"


async def refused_connect() -> None:
    # A port that is bound but not listening refuses connections.
    with socket.socket() as placeholder:
        placeholder.bind(("127.0.0.1", 0))
        port = placeholder.getsockname()[1]
        async with trionet.TCPConnection.new("127.0.0.1", port) as conn:
            async for event in conn.events():
                if event.type == "error":
                    for record in event.errors:
                        print(f"  error event: {describe(record)}")
        print(f"  conn.errors keeps it: {len(conn.errors)} record(s)")


class Calculator:
    """Answers each "a+b" chunk; anything else makes on_data raise."""

    async def on_data(self, conn: trionet.TCPConnection, event: trionet.TCPEvent) -> None:
        assert event.data is not None
        left, right = event.data.split(b"+")  # raises ValueError on bad input
        await conn.send(b"%d" % (int(left) + int(right)))

    def on_error(self, conn: trionet.TCPConnection, event: trionet.TCPEvent) -> None:
        for record in event.errors:
            print(f"  server on_error: {describe(record)}")


class CalculatorServer:
    def on_connection(self, listener: trionet.TCPListener, event: trionet.TCPEvent) -> Calculator:
        return Calculator()


async def ask(port: int, question: bytes) -> list[str]:
    """Send one question; return what came back and the events seen."""
    seen: list[str] = []
    async with trionet.TCPConnection.new("127.0.0.1", port) as conn:
        await conn.send(question)
        async for event in conn.events():
            if event.type == "data":
                assert event.data is not None
                seen.append(event.data.decode())
                await conn.shutdown()
            elif event.type != "connection":
                seen.append(event.type.value)
    return seen


async def raising_handler() -> None:
    async with trionet.TCPListener.new(0, CalculatorServer(), host="127.0.0.1") as listener:
        print(f"  bad input  -> client saw {await ask(listener.port, b'hello')}")
        print(f"  good input -> client saw {await ask(listener.port, b'2+3')}")
        listener.terminate()


async def exceptions() -> None:
    async with trionet.TCPListener.new(0, CalculatorServer(), host="127.0.0.1") as listener:
        try:
            async with trionet.TCPListener.new(listener.port, CalculatorServer(), host="127.0.0.1"):
                pass
        except trionet.ListenError as exc:  # also an OSError, with the system's errno
            print(f"  ListenError: errno {errno.errorcode[exc.errno]}")

        async with trionet.TCPConnection.new("127.0.0.1", listener.port) as conn:
            await conn.shutdown()
            try:
                await conn.send(b"too late")
            except trionet.ConnectionClosedError as exc:
                print(f"  ConnectionClosedError: {exc}")
        listener.terminate()

    try:
        trionet.TCPConnection.new("127.0.0.1", 70000)
    except ValueError as exc:
        print(f"  ValueError: {exc}")


async def main() -> None:
    # A raising callback is logged (with its traceback) on the "trionet" logger; keep this
    # demo's output short.  A real program would leave the logging on.
    logging.getLogger("trionet").setLevel(logging.CRITICAL)
    with trio.fail_after(10):
        print("refused connect")
        await refused_connect()
        print("a callback that raises")
        await raising_handler()
        print("exceptions")
        await exceptions()


if __name__ == "__main__":
    trio.run(main)
