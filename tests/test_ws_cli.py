"""``python -m trionet echo --ws 0``: echo, --max-message, and 1001 then exit 0 on signals."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio
from websockets.exceptions import ConnectionClosed

from .test_ws_interop import in_thread, sync_client

REPO = Path(__file__).resolve().parent.parent


@asynccontextmanager
async def echo_server(*args: str) -> AsyncIterator[tuple[Any, str]]:
    """The CLI echo server as a subprocess: the process and its ws:// URL."""
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "trionet", "echo", "--ws", "0", *args],
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        cwd=REPO,
    )
    assert process.stdout is not None
    try:
        lines = b""
        while b"READY\n" not in lines:
            chunk = await process.stdout.receive_some()
            assert chunk, f"exited before READY: {lines!r}"
            lines += chunk
        text = lines.decode()
        address = text.split("websocket echo listening on ")[1].split()[0]
        assert address.startswith("ws://127.0.0.1:")
        yield process, address
    finally:
        if process.returncode is None:
            process.kill()
            with trio.CancelScope(shield=True):
                await process.wait()


async def test_echo_text_and_binary() -> None:
    def conversation(address: str) -> list[Any]:
        with sync_client(address) as ws:
            ws.send("texte")
            first = ws.recv(timeout=5)
            ws.send(b"\x00\x01")
            return [first, ws.recv(timeout=5)]

    with trio.fail_after(30):
        async with echo_server() as (_, address):
            assert await in_thread(lambda: conversation(address)) == ["texte", b"\x00\x01"]


@pytest.mark.parametrize(("args", "passes"), [((), False), (("--max-message", "4194304"), True)])
async def test_max_message(args: tuple[str, ...], passes: bool) -> None:
    big = b"m" * (2 * 1024 * 1024)

    def conversation(address: str) -> Any:
        with sync_client(address, max_size=None) as ws:
            ws.send(big)
            try:
                return ws.recv(timeout=10) == big
            except ConnectionClosed as exc:
                return exc.rcvd.code if exc.rcvd is not None else None

    with trio.fail_after(30):
        async with echo_server(*args) as (_, address):
            assert await in_thread(lambda: conversation(address)) == (True if passes else 1009)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
async def test_signal_sends_1001_and_exits_0(signum: signal.Signals) -> None:
    def conversation(address: str, opened: Any) -> int:
        with sync_client(address) as ws:
            ws.send("x")
            ws.recv(timeout=5)
            trio.from_thread.run_sync(opened.set)
            with pytest.raises(ConnectionClosed) as info:
                ws.recv(timeout=15)
            assert info.value.rcvd is not None
            return info.value.rcvd.code

    with trio.fail_after(30):
        async with echo_server() as (process, address), trio.open_nursery() as nursery:
            opened = trio.Event()
            codes: list[int] = []

            async def client() -> None:
                codes.append(await in_thread(lambda: conversation(address, opened)))

            nursery.start_soon(client)
            await opened.wait()
            process.send_signal(signum)
            with trio.fail_after(10):  # the close timeout
                assert await process.wait() == 0
    assert codes == [1001]
