"""Echo servers for the benchmarks, one per process: TCP, and WebSocket.

The WebSocket servers are trionet's (``trionet-ws-*``) and its peers' (``websockets-asyncio``,
``websockets-trio``, ``trio-websocket``), all with compression off and every other setting
at the library's default.

Run ``python benchmarks/servers.py NAME``: the server binds 127.0.0.1 on a port the system
picks, prints ``READY <port>`` on stdout once it accepts connections, and echoes every byte
(or every WebSocket message: text as text, binary as binary, up to 64 MiB) back until
SIGTERM or SIGINT, then exits cleanly.  With ``--port N`` it binds that port and prints a
plain ``READY``, which is what outside harnesses (the shared benchmark) expect.

Every server sets ``TCP_NODELAY`` on its accepted sockets so that they are comparable.

Options:
    ``--cpu N`` pins the process to CPU ``N`` (before any thread exists), so that it does not
    share a core with the load client.  ``--profile PATH`` runs the server under
    :mod:`cProfile` and writes the statistics to ``PATH`` when it stops.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import functools
import os
import signal
import socket
import sys
from collections.abc import Callable

HOST = "127.0.0.1"
RECEIVE_SIZE = 65536
WS_MAX_MESSAGE = 64 * 1024 * 1024  # what the shared benchmark's peers accept
PORT = 0  # --port: 0 lets the system pick (and READY tells which)


def _ready(port: int) -> None:
    """Tell the parent which port to use (the only thing a server writes to stdout)."""
    print("READY" if PORT else f"READY {port}", flush=True)


# -- trio-based servers ------------------------------------------------------------------


def run_trionet_handler() -> None:
    """``trionet.TCPListener`` with a handler object whose ``on_data`` sends the data back."""
    import trio

    import trionet

    class EchoConnection:
        async def on_data(self, conn: trionet.TCPConnection, event: trionet.TCPEvent) -> None:
            assert event.data is not None
            await conn.send(event.data)

    class EchoListener:
        def on_connection(
            self, listener: trionet.TCPListener, event: trionet.TCPEvent
        ) -> EchoConnection:
            return EchoConnection()

    async def main() -> None:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async with trionet.TCPListener.new(
                PORT, EchoListener(), host=HOST, no_delay=True
            ) as listener:
                _ready(listener.port)
                async for _ in signals:
                    break

    trio.run(main)


def run_trionet_events() -> None:
    """``trionet.TCPListener`` with ``async def serve(conn)`` iterating ``conn.events()``."""
    import trio

    import trionet

    async def serve(conn: trionet.TCPConnection) -> None:
        async for event in conn.events():
            if event.type == "data":
                assert event.data is not None
                await conn.send(event.data)

    async def main() -> None:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async with trionet.TCPListener.new(PORT, serve, host=HOST, no_delay=True) as listener:
                _ready(listener.port)
                async for _ in signals:
                    break

    trio.run(main)


def run_trionet_ws_handler() -> None:
    """``trionet.WebSocketServer`` with a connection handler whose ``on_message`` echoes."""

    import trionet

    class Echo:
        async def on_message(
            self, ws: trionet.WebSocketConnection, event: trionet.WebSocketEvent
        ) -> None:
            await ws.send(event.data)

    class Server:
        def on_connection(
            self, wss: trionet.WebSocketServer, event: trionet.WebSocketEvent
        ) -> Echo:
            return Echo()

    _run_ws(Server())


def run_trionet_ws_events() -> None:
    """``trionet.WebSocketServer`` with ``async def serve(ws)`` iterating ``ws.events()``."""
    import trionet

    async def serve(ws: trionet.WebSocketConnection) -> None:
        async for event in ws.events():
            if event.type == "message":
                await ws.send(event.data)

    _run_ws(serve)


def _run_ws(handler: object) -> None:
    import trio

    import trionet

    async def main() -> None:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async with trionet.WebSocketServer.new(
                handler, host=HOST, port=PORT, max_message_size=WS_MAX_MESSAGE
            ) as wss:
                _ready(wss.port)
                async for _ in signals:
                    break

    trio.run(main)


def run_trio_bare() -> None:
    """``trio.serve_tcp`` with a ``receive_some``/``send_all`` loop per connection."""
    import trio

    async def echo(stream: trio.SocketStream) -> None:
        # trio already sets TCP_NODELAY on every SocketStream; repeated for clarity.
        stream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, True)
        try:
            while data := await stream.receive_some(RECEIVE_SIZE):
                await stream.send_all(data)
        except trio.BrokenResourceError:
            pass  # the client reset the connection; nothing to echo any more
        finally:
            await trio.aclose_forcefully(stream)

    async def main() -> None:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async with trio.open_nursery() as nursery:
                serve = functools.partial(trio.serve_tcp, echo, PORT, host=HOST)
                listeners = await nursery.start(serve)
                _ready(listeners[0].socket.getsockname()[1])
                async for _ in signals:
                    break
                nursery.cancel_scope.cancel()

    trio.run(main)


def run_trio_websocket() -> None:
    """trio-websocket's ``serve_websocket`` (trio + wsproto), library defaults otherwise."""
    import trio
    from trio_websocket import ConnectionClosed, WebSocketRequest, serve_websocket

    async def echo(request: WebSocketRequest) -> None:
        ws = await request.accept()
        try:
            while True:
                await ws.send_message(await ws.get_message())
        except ConnectionClosed:
            pass

    async def main() -> None:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async with trio.open_nursery() as nursery:
                serve = functools.partial(
                    serve_websocket, echo, HOST, PORT, None, max_message_size=WS_MAX_MESSAGE
                )
                server = await nursery.start(serve)
                _ready(server.port)
                async for _ in signals:
                    break
                nursery.cancel_scope.cancel()

    trio.run(main)


def run_websockets_trio() -> None:
    """websockets' trio server (``websockets.trio.server.serve``), compression off."""
    import trio
    from websockets.trio.server import ServerConnection, serve

    async def echo(ws: ServerConnection) -> None:
        async for message in ws:
            await ws.send(message)

    async def main() -> None:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async with trio.open_nursery() as nursery:
                start = functools.partial(
                    serve, echo, PORT, host=HOST, compression=None, max_size=WS_MAX_MESSAGE
                )
                server = await nursery.start(start)
                _ready(server.listeners[0].socket.getsockname()[1])
                async for _ in signals:
                    break
                nursery.cancel_scope.cancel()

    trio.run(main)


# -- asyncio-based servers ---------------------------------------------------------------


def _set_no_delay(sock: socket.socket | None) -> None:
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


async def _serve_asyncio_until_signal(server: asyncio.Server) -> None:
    """Announce ``server``'s port, serve until SIGTERM/SIGINT, then close it."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    _ready(server.sockets[0].getsockname()[1])
    try:
        await stop.wait()
    finally:
        server.close()


def run_asyncio_streams() -> None:
    """``asyncio.start_server`` with ``reader.read`` and ``writer.write`` + ``drain``."""

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        _set_no_delay(writer.get_extra_info("socket"))
        try:
            while data := await reader.read(RECEIVE_SIZE):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass  # the client reset the connection
        finally:
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(echo, HOST, PORT)
        await _serve_asyncio_until_signal(server)

    asyncio.run(main())


class _EchoProtocol(asyncio.Protocol):
    """Writes every received chunk back; stops reading while the send buffer is full."""

    transport: asyncio.Transport

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        _set_no_delay(transport.get_extra_info("socket"))

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)

    def pause_writing(self) -> None:
        self.transport.pause_reading()

    def resume_writing(self) -> None:
        self.transport.resume_reading()


def run_asyncio_protocol() -> None:
    """``loop.create_server`` with an :class:`asyncio.Protocol` echoing in ``data_received``."""

    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(_EchoProtocol, HOST, PORT)
        await _serve_asyncio_until_signal(server)

    asyncio.run(main())


def run_websockets_asyncio() -> None:
    """websockets' asyncio server (``websockets.asyncio.server.serve``), compression off."""
    from websockets.asyncio.server import ServerConnection, serve

    async def echo(ws: ServerConnection) -> None:
        async for message in ws:
            await ws.send(message)

    async def main() -> None:
        async with serve(echo, HOST, PORT, compression=None, max_size=WS_MAX_MESSAGE) as server:
            await _serve_asyncio_until_signal(server)  # type: ignore[arg-type]

    asyncio.run(main())


SERVERS: dict[str, Callable[[], None]] = {
    "trionet-handler": run_trionet_handler,
    "trionet-events": run_trionet_events,
    "trionet-ws-handler": run_trionet_ws_handler,
    "trionet-ws-events": run_trionet_ws_events,
    "trio-bare": run_trio_bare,
    "asyncio-streams": run_asyncio_streams,
    "asyncio-protocol": run_asyncio_protocol,
    "websockets-asyncio": run_websockets_asyncio,
    "websockets-trio": run_websockets_trio,
    "trio-websocket": run_trio_websocket,
}
"""Every benchmarked server, by the name used on the command line."""


def main(argv: list[str] | None = None) -> int:
    """Run the echo server named on the command line; returns the exit status."""
    parser = argparse.ArgumentParser(description="Run one benchmark echo server.")
    parser.add_argument("server", choices=sorted(SERVERS))
    parser.add_argument("--cpu", type=int, help="pin this process to the given CPU")
    parser.add_argument(
        "--port", type=int, default=0, help="port to bind (default: one the system picks)"
    )
    parser.add_argument("--profile", metavar="PATH", help="write cProfile statistics to PATH")
    args = parser.parse_args(argv)
    global PORT
    PORT = args.port
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    run = SERVERS[args.server]
    if args.profile is None:
        run()
        return 0
    profiler = cProfile.Profile()
    try:
        profiler.runcall(run)
    finally:
        profiler.dump_stats(args.profile)
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
