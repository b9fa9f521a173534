"""``python -m trionet``: servers and tools built on the public API."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence
from contextlib import AsyncExitStack

import trio

from ._chat import add_chat_command, run_chat
from ._client_cli import add_client_parser, client_main
from ._connection import TCPConnection
from ._events import TCPEvent
from ._listener import TCPListener
from ._util import url_host
from ._wsconnection import WebSocketConnection
from ._wsevents import WebSocketEvent
from ._wsserver import WebSocketServer

__all__ = ["main"]

log = logging.getLogger("trionet.cli")


class _EchoConnection:
    """Sends every received chunk straight back."""

    async def on_data(self, conn: TCPConnection, event: TCPEvent) -> None:
        assert event.data is not None
        await conn.send(event.data)


class _EchoListener:
    """Accepts every connection with an echo handler."""

    def on_connection(self, listener: TCPListener, event: TCPEvent) -> _EchoConnection:
        return _EchoConnection()


class _WebSocketEcho:
    """Sends every message back: text as text, binary as binary."""

    async def on_message(self, ws: WebSocketConnection, event: WebSocketEvent) -> None:
        await ws.send(event.data)


class _WebSocketEchoServer:
    """Accepts every WebSocket connection with an echo handler."""

    def on_connection(self, wss: WebSocketServer, event: WebSocketEvent) -> _WebSocketEcho:
        return _WebSocketEcho()


async def _echo(
    host: str, tcp_port: int | None, ws_port: int | None, max_message: int, ready: str
) -> None:
    """Run the echo servers until SIGINT or SIGTERM, then end every connection in order."""
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with AsyncExitStack() as servers:
            if tcp_port is not None:
                listener = await servers.enter_async_context(
                    TCPListener.new(tcp_port, _EchoListener(), host=host, no_delay=True)
                )
                print(f"tcp echo listening on {host}:{listener.port}", flush=True)
            if ws_port is not None:
                wss = await servers.enter_async_context(
                    WebSocketServer.new(
                        _WebSocketEchoServer(),
                        host=host,
                        port=ws_port,
                        max_message_size=max_message,
                    )
                )
                print(f"websocket echo listening on ws://{url_host(host)}:{wss.port}/", flush=True)
            print(ready, flush=True)
            async for signum in signals:
                log.info("received %s, shutting down", signal.Signals(signum).name)
                break
            # Leaving the stack closes every connection: 1001 for WebSocket clients.


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be in 0..65535, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m trionet``."""
    parser = argparse.ArgumentParser(
        prog="python -m trionet",
        description="trionet servers and tools: 4D's TCP and WebSocket classes on trio.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    echo = commands.add_parser(
        "echo",
        help="run echo servers; prints READY once every port listens",
        description="Echo every TCP byte and every WebSocket message back (text as text, "
        "binary as binary), with TCP_NODELAY. Prints READY once every port listens; Ctrl-C "
        "or SIGTERM stops it cleanly (WebSocket clients get close code 1001).",
    )
    echo.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    echo.add_argument("--tcp", type=_port, metavar="PORT", help="TCP echo port (0: pick one)")
    echo.add_argument("--ws", type=_port, metavar="PORT", help="WebSocket echo port (0: pick one)")
    echo.add_argument(
        "--max-message",
        type=_size,
        metavar="BYTES",
        default=1024 * 1024,
        help="largest WebSocket message accepted (default 1048576)",
    )
    add_chat_command(commands, _port)
    add_client_parser(commands)
    return parser


def _size(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"size must be positive, got {value}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m trionet``; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    if args.command == "echo":
        if args.tcp is None and args.ws is None:
            parser.error("echo needs at least one of --tcp PORT, --ws PORT")
        trio.run(_echo, args.host, args.tcp, args.ws, args.max_message, "READY")
        return 0
    if args.command == "client":
        return client_main(args, parser)
    if args.command == "chat":
        return run_chat(args)
    parser.error(f"unknown command {args.command!r}")  # pragma: no cover - argparse checks
    return 2  # pragma: no cover


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
