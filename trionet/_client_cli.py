"""``python -m trionet client URL``: an interactive WebSocket client, like ``python -m websockets``.

What it does:

* Each line read from stdin is sent as one text message (without its line ending).
* Each message received is printed on its own line as it arrives: text as is, binary as
  ``(binary) 00 01 ff``.  When stdout is a terminal, control characters in messages are
  escaped (a server cannot drive the terminal).
* When stdin and stdout are both terminals, the line being typed is left alone: a message
  that arrives is inserted *above* it (the terminal's own echo keeps what was typed, the
  cursor is saved and restored around the insertion), and each line shows a ``> ``
  prompt; received lines start with ``< ``.
* At the end of stdin (a pipe running dry, or Ctrl-D), messages that arrive during a grace
  period (``--grace``, 1 s by default) are still printed; then the client closes with 1000
  and exits 0.  Ctrl-C (or SIGTERM) closes with 1000 at once and exits 0 too.
* Connection notes (connected, closed, errors) go to stderr, so stdout holds only messages.
  A connection that fails (refused, timed out, certificate not trusted, upgrade refused
  with an HTTP status, dropped) prints why and exits 1.
"""

from __future__ import annotations

import argparse
import itertools
import os
import signal
import ssl
import sys
from typing import Any

import trio

from ._exceptions import ConnectionClosedError
from ._websocket import WebSocket, parse_ws_url
from ._wsconnection import WebSocketConnection

__all__ = ["add_client_parser", "run_client"]

#: Control characters (C0, DEL, C1) shown escaped on a terminal, as ``repr`` shows them.
_ESCAPES = str.maketrans(
    {i: repr(chr(i))[1:-1] for i in itertools.chain(range(32), range(127, 160))}
)

#: Insert a line above the one being typed: save the cursor, open a line above, write,
#: restore the cursor, and step down onto the (scrolled) input line again.
_INSERT_ABOVE = "\0337\n\033[A\033[L{}\n\0338\033[B"

_DEFAULT_GRACE = 1.0


def add_client_parser(commands: Any) -> None:
    """Add the ``client`` command to the subparsers of ``python -m trionet``."""
    client = commands.add_parser(
        "client",
        help="interactive WebSocket client (stdin lines are sent, messages printed)",
        description="Connect to a WebSocket URL. Each line of stdin is sent as a text "
        "message; each message received is printed on its own line (binary as hex). On a "
        "terminal, messages appear above the line being typed. At the end of stdin, "
        "replies arriving within --grace seconds are printed, then the connection closes "
        "with 1000. Notes go to stderr; a failed connection exits with status 1.",
    )
    client.add_argument("url", help="ws://host[:port]/path or wss://...")
    client.add_argument(
        "--header",
        action="append",
        default=[],
        metavar="NAME:VALUE",
        type=_header,
        help="extra request header (repeatable), e.g. 'Authorization: Bearer x'",
    )
    client.add_argument(
        "--subprotocol",
        action="append",
        default=[],
        metavar="NAME",
        help="subprotocol to offer (repeatable); the chosen one is shown on connect",
    )
    client.add_argument(
        "--cafile",
        metavar="PEM",
        help="for wss://: trust the CA certificates in this file instead of the system's",
    )
    client.add_argument(
        "--insecure",
        action="store_true",
        help="for wss://: do not verify the server's certificate or host name",
    )
    client.add_argument(
        "--grace",
        type=_seconds,
        default=_DEFAULT_GRACE,
        metavar="SECONDS",
        help=f"after the end of stdin, wait this long for replies (default {_DEFAULT_GRACE:g})",
    )
    client.add_argument(
        "--open-timeout",
        type=_seconds,
        default=10.0,
        metavar="SECONDS",
        help="limit for DNS, TCP, TLS and the upgrade together (default 10)",
    )


def _header(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"header must look like NAME:VALUE, got {text!r}")
    return name.strip(), value.strip()


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"seconds must be >= 0, got {text!r}")
    return value


class _Console:
    """Where messages and notes go; knows whether it draws around a line being typed."""

    def __init__(self, *, interactive: bool, escape: bool) -> None:
        self.interactive = interactive  # stdin and stdout are terminals
        self.escape = escape  # stdout is a terminal
        self.prompting = False  # a "> " prompt is on screen

    def show(self, text: str) -> str:
        return text.translate(_ESCAPES) if self.escape else text

    def message(self, data: object) -> None:
        if isinstance(data, str):
            line = self.show(data)
        else:
            assert isinstance(data, bytes)
            line = "(binary) " + data.hex(" ")
        if self.interactive:
            line = "< " + line
            if self.prompting:
                sys.stdout.write(_INSERT_ABOVE.format(line))
                sys.stdout.flush()
                return
        print(line, flush=True)

    def note(self, text: str) -> None:
        if self.interactive and self.prompting:
            sys.stdout.write(_INSERT_ABOVE.format(self.show(text)))
            sys.stdout.flush()
        else:
            print(text, file=sys.stderr, flush=True)

    def prompt(self) -> None:
        if self.interactive:
            sys.stdout.write("> ")
            sys.stdout.flush()
            self.prompting = True

    def done(self) -> None:
        if self.interactive and self.prompting:
            sys.stdout.write("\r\033[K")  # erase the prompt line
            sys.stdout.flush()
            self.prompting = False


def _ssl_context(args: argparse.Namespace) -> ssl.SSLContext | None:
    if args.insecure:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    if args.cafile:
        return ssl.create_default_context(cafile=args.cafile)
    return None


async def _send_stdin(ws: WebSocketConnection, console: _Console, grace: float) -> None:
    """Send each stdin line; at EOF wait ``grace`` seconds, then close with 1000."""
    stdin = trio.lowlevel.FdStream(os.dup(sys.stdin.fileno()))
    async with stdin:
        pending = b""
        console.prompt()
        while True:
            chunk = await stdin.receive_some(65536)
            if not chunk:
                break
            pending += chunk
            *lines, pending = pending.split(b"\n")
            try:
                for line in lines:
                    await ws.send(line.removesuffix(b"\r").decode("utf-8", "replace"))
            except ConnectionClosedError:
                return  # the events loop reports why
            if lines:
                console.prompt()
        if pending:
            try:
                await ws.send(pending.decode("utf-8", "replace"))
            except ConnectionClosedError:
                return
    console.done()
    await trio.sleep(grace)
    await ws.terminate(1000)


async def _watch_signals(ws: WebSocketConnection) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _ in signals:
            await ws.terminate(1000)
            return


async def run_client(args: argparse.Namespace) -> int:
    """Run the client until the connection ends; returns the exit status."""
    console = _Console(
        interactive=sys.stdin.isatty() and sys.stdout.isatty(), escape=sys.stdout.isatty()
    )
    status = 0
    async with (
        WebSocket.new(
            args.url,
            headers=args.header,
            subprotocols=args.subprotocol,
            ssl_context=_ssl_context(args),
            open_timeout=args.open_timeout,
        ) as ws,
        trio.open_nursery() as nursery,
    ):
        nursery.start_soon(_watch_signals, ws)
        async for event in ws.events():
            if event.type == "open":
                chosen = f" (subprotocol {ws.protocol})" if ws.protocol else ""
                console.note(f"Connected to {args.url}{chosen}.")
                nursery.start_soon(_send_stdin, ws, console, args.grace)
            elif event.type == "message":
                console.message(event.data)
            elif event.type == "error":
                status = 1
                for record in event.errors:
                    console.done()
                    console.note(f"Error: {record.message}")
            elif event.type == "terminate" and ws.errors == [] and status == 0:
                console.done()
                reason = f" {event.reason}" if event.reason else ""
                console.note(f"Connection closed: {event.code}{reason}.")
        console.done()
        nursery.cancel_scope.cancel()
    return status


def client_main(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Check the URL, then run the client; returns the exit status."""
    try:
        parse_ws_url(args.url)
    except ValueError as exc:
        parser.error(str(exc))
    try:
        return trio.run(run_client, args)
    except KeyboardInterrupt:  # Ctrl-C before the signal handler was installed
        return 130
