"""``python -m trionet client URL`` in a subprocess against trionet servers on port 0.

Pipe mode (lines sent, replies printed, close 1000, exit 0), failures (exit 1, the reason
on stderr), headers and subprotocols, Ctrl-C, and terminal mode on a pseudo-terminal.
"""

from __future__ import annotations

import os
import pty
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio

from .wshelpers import HOST, Recorder, serve

TIMEOUT = 30  # a subprocess start includes importing trio
CLIENT = [sys.executable, "-m", "trionet", "client"]


def url(wss: Any, path: str = "/") -> str:
    return f"ws://{HOST}:{wss.port}{path}"


async def run(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return await trio.run_process(
        [*CLIENT, *args], stdin=stdin, capture_stdout=True, capture_stderr=True, check=False
    )


class Greeter(Recorder):
    """Echoes, and greets each connection with a binary message first."""

    def on_connection(self, wss: Any, event: Any) -> Any:
        conn = super().on_connection(wss, event)

        async def on_open(ws: Any, event: Any) -> None:
            conn.events.append(event)
            await ws.send(b"\x00\xff")

        conn.on_open = on_open
        return conn


async def test_pipe_mode_prints_replies_and_closes_with_1000() -> None:
    recorder = Greeter()
    with trio.fail_after(TIMEOUT):
        async with serve(recorder) as wss:
            result = await run(url(wss), "--grace", "0.5", stdin="hi\nthere ✓\n".encode())
            conn = await recorder.last_terminated()
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().splitlines() == ["(binary) 00 ff", "hi", "there ✓"]
    assert [e.data for e in conn.of("message")] == ["hi", "there ✓"]
    assert conn.of("terminate")[0].code == 1000
    assert b"Connected to" in result.stderr


async def test_last_line_without_newline_is_sent() -> None:
    recorder = Recorder()
    with trio.fail_after(TIMEOUT):
        async with serve(recorder) as wss:
            result = await run(url(wss), "--grace", "0.3", stdin=b"one\r\ntwo")
            conn = await recorder.last_terminated()
    assert result.returncode == 0, result.stderr
    assert [e.data for e in conn.of("message")] == ["one", "two"]


async def test_headers_and_subprotocols_reach_the_server() -> None:
    recorder = Recorder()

    with trio.fail_after(TIMEOUT):
        async with serve(recorder) as wss:
            result = await run(
                url(wss),
                "--header",
                "Authorization: Bearer t0k",
                "--header",
                "X-Trace:7",
                "--subprotocol",
                "chat.v1",
                "--subprotocol",
                "chat.v2",
                "--grace",
                "0",
            )
    assert result.returncode == 0, result.stderr
    request = recorder.events[0].request
    assert request.headers["authorization"] == "Bearer t0k"
    assert request.headers["x-trace"] == "7"
    assert request.subprotocols == ("chat.v1", "chat.v2")


async def test_refused_connection_exits_1_with_the_reason() -> None:
    with trio.fail_after(TIMEOUT):
        async with serve() as wss:
            port = wss.port
        result = await run(f"ws://{HOST}:{port}/")
    assert result.returncode == 1
    assert b"refused" in result.stderr.lower()
    assert result.stdout == b""


async def test_refused_upgrade_exits_1_with_the_status() -> None:
    with trio.fail_after(TIMEOUT):
        async with serve(path="/only") as wss:
            result = await run(url(wss, "/other"))
    assert result.returncode == 1
    assert b"404" in result.stderr


def test_bad_url_is_a_usage_error() -> None:
    result = subprocess.run(
        [*CLIENT, "http://example.test/"], capture_output=True, text=True, timeout=TIMEOUT
    )
    assert result.returncode == 2
    assert "ws://" in result.stderr


def test_bad_header_is_a_usage_error() -> None:
    result = subprocess.run(
        [*CLIENT, "ws://example.test/", "--header", "nocolon"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert result.returncode == 2
    assert "NAME:VALUE" in result.stderr


def test_help_lists_client() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "trionet", "--help"], capture_output=True, text=True, timeout=TIMEOUT
    )
    assert "client" in result.stdout


@asynccontextmanager
async def reaped(process: trio.Process) -> AsyncIterator[trio.Process]:
    """Kill ``process`` if the block fails, and close its pipes."""
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
            with trio.CancelScope(shield=True):
                await process.wait()
        for pipe in (process.stdin, process.stdout, process.stderr):
            if pipe is not None:
                await pipe.aclose()


async def read_until(stream: Any, needle: bytes, seen: bytearray) -> None:
    while needle not in seen:
        chunk = await stream.receive_some()
        assert chunk, f"ended before {needle!r}: {bytes(seen)!r}"
        seen += chunk


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
async def test_signal_closes_with_1000(signum: signal.Signals) -> None:
    recorder = Recorder()
    with trio.fail_after(TIMEOUT):
        async with serve(recorder) as wss:
            process = await trio.lowlevel.open_process(
                [*CLIENT, url(wss)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            assert process.stdin is not None
            assert process.stdout is not None
            assert process.stderr is not None
            async with reaped(process):
                await process.stdin.send_all(b"ping\n")
                await read_until(process.stdout, b"ping\n", bytearray())
                process.send_signal(signum)
                assert await process.wait() == 0
            conn = await recorder.last_terminated()
    assert conn.of("terminate")[0].code == 1000


async def test_terminal_mode_prints_above_the_line_being_typed() -> None:
    recorder = Recorder()
    master, slave = pty.openpty()
    try:
        with trio.fail_after(TIMEOUT):
            async with serve(recorder) as wss:
                process = await trio.lowlevel.open_process(
                    [*CLIENT, url(wss), "--grace", "0.2"],
                    stdin=slave,
                    stdout=slave,
                    stderr=slave,
                )
                os.close(slave)
                slave = -1
                screen = trio.lowlevel.FdStream(master)
                master = -1
                async with reaped(process), screen:
                    seen = bytearray()
                    await read_until(screen, b"> ", seen)
                    await screen.send_all(b"hello \x1b[31m\n")
                    await read_until(screen, b"< hello \\x1b[31m", seen)  # escaped
                    # The insertion saves and restores the cursor around the new line.  The
                    # pty may hand over the restore in a later read than the line itself.
                    await read_until(screen, b"\x1b8", seen)
                    assert b"\x1b7" in seen
                    assert b"\x1b8" in seen
                    line = seen.index(b"< hello")
                    assert seen.rindex(b"\x1b7", 0, line) < line < seen.index(b"\x1b8", line)
                    await screen.send_all(b"\x04")  # Ctrl-D: end of input
                    assert await process.wait() == 0
                conn = await recorder.last_terminated()
    finally:
        for fd in (master, slave):
            if fd >= 0:
                os.close(fd)
    assert [e.data for e in conn.of("message")] == ["hello \x1b[31m"]
    assert conn.of("terminate")[0].code == 1000


async def test_unreachable_host_name_fails_quickly() -> None:
    with trio.fail_after(TIMEOUT):
        result = await run("ws://nonexistent.invalid/", "--open-timeout", "5")
    assert result.returncode == 1
    assert b"nonexistent.invalid" in result.stderr
