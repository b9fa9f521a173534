"""``python -m trionet``: servers and tools built on the public API."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence

import trio

from ._connection import TCPConnection
from ._events import TCPEvent
from ._listener import TCPListener

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


async def _echo(host: str, tcp_port: int | None, ready: str) -> None:
    """Run the echo servers until SIGINT or SIGTERM."""
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with TCPListener.new(tcp_port or 0, _EchoListener(), host=host) as listener:
            print(f"tcp echo listening on {host}:{listener.port}", flush=True)
            print(ready, flush=True)
            async for signum in signals:
                log.info("received %s, shutting down", signal.Signals(signum).name)
                break


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be in 0..65535, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m trionet``."""
    parser = argparse.ArgumentParser(
        prog="python -m trionet",
        description="trionet servers and tools: 4D's TCP classes on trio.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    echo = commands.add_parser(
        "echo",
        help="run echo servers; prints READY once every port listens",
        description="Echo every byte back. Prints READY once listening; Ctrl-C or SIGTERM "
        "stops it cleanly.",
    )
    echo.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    echo.add_argument("--tcp", type=_port, metavar="PORT", help="TCP echo port (0: pick one)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m trionet``; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    if args.command == "echo":
        if args.tcp is None:
            parser.error("echo needs at least one of --tcp PORT")
        trio.run(_echo, args.host, args.tcp, "READY")
        return 0
    parser.error(f"unknown command {args.command!r}")  # pragma: no cover - argparse checks
    return 2  # pragma: no cover


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
