"""``python -m trionet``: help, the echo server, READY, clean exit on signals."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest
import trio

HOST = "127.0.0.1"


def test_help_lists_commands() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "trionet", "--help"], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0
    assert "echo" in result.stdout


def test_echo_without_ports_is_a_usage_error() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "trionet", "echo"], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert "--tcp" in result.stderr


def test_echo_rejects_bad_port() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "trionet", "echo", "--tcp", "70000"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "port" in result.stderr


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
async def test_echo_server_ready_echoes_and_exits_cleanly(signum: signal.Signals) -> None:
    with trio.fail_after(30):
        process = await trio.lowlevel.open_process(
            [sys.executable, "-m", "trionet", "echo", "--tcp", "0", "--host", HOST],
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
        )
        assert process.stdout is not None
        try:
            lines = b""
            while b"READY\n" not in lines:
                chunk = await process.stdout.receive_some()
                assert chunk, f"exited before READY: {lines!r}"
                lines += chunk
            text = lines.decode()
            port = int(text.split("listening on ")[1].split()[0].rsplit(":", 1)[1])
            async with await trio.open_tcp_stream(HOST, port) as stream:
                await stream.send_all(b"echo me")
                received = b""
                while len(received) < 7:
                    received += await stream.receive_some()
                assert received == b"echo me"
                process.send_signal(signum)
                # The server ends our connection in order: FIN, not a reset.
                assert await stream.receive_some() == b""
            assert await process.wait() == 0
        finally:
            if process.returncode is None:  # pragma: no cover - only on failure
                process.kill()
                with trio.CancelScope(shield=True):
                    await process.wait()
