"""Run every example of the documentation as a program: each must exit 0.

The examples in ``docs/examples/`` are shown in the docs with ``literalinclude``; running
them here keeps the docs honest.  Each one starts its own server and client on 127.0.0.1
with port 0 and bounds itself with ``trio.fail_after``; the subprocess timeout is a second
guard.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "docs" / "examples"
TIMEOUT = 60

#: example file -> lines its standard output must contain
EXPECTED: dict[str, list[str]] = {
    "echo_server_handler.py": [
        "server: listening on port",
        "server: connection released",
        "client: echoed b'hello, trionet'",
        "server: listener closed",
    ],
    "echo_client_events.py": [
        "client: the connection closed in order",
        "client: released",
        "client: 34 bytes echoed: b'first line\\nsecond line\\nthird line\\n'",
    ],
    "serve_function.py": [
        "serve function: b'HELLO\\nSPLIT ACROSS SENDS\\nBYE\\n'",
        "handler object: b'HELLO\\nSPLIT ACROSS SENDS\\nBYE\\n'",
    ],
    "half_close.py": ["  reply: received 16 bytes"],
    "ending_connections.py": [
        "  events: ['connection', 'data', 'close', 'terminate'], closed=True",
        "  cancelled=True events: ['connection', 'close', 'terminate']",
        "  error record: CLOSE_TIMEOUT",
    ],
    "handling_errors.py": [
        "  error event: ECONNREFUSED from 'os': cannot connect to 127.0.0.1:",
        "  bad input  -> client saw ['close', 'terminate']",
        "  good input -> client saw ['5', 'close', 'terminate']",
        "  ListenError: errno EADDRINUSE",
        "  ValueError: port must be in 0..65535, got 70000",
    ],
    "testing_with_memory.py": [
        "passed: test_answers_in_upper_case",
        "passed: test_listener_serves_several_clients",
        "passed: test_websocket_handler",
    ],
    "terminate_from_thread.py": [
        "operator thread operator: terminating the listener",
        "client event: terminate",
        "listener terminated: True",
    ],
    "godot_game_server.py": [
        "server: sent 5 state updates to 3 players",
        "player 1: tick 5, at (5, 5)",
        "player 2: tick 5, at (10, 5)",
        "player 3: tick 5, at (15, 5)",
        "server: closed, every player disconnected",
    ],
    "port_from_4d.py": [
        "client: received 'info: getInfo'",
        "listener: terminated",
        "mapping handler received [b'from a mapping']",
    ],
}


def run_example(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def test_every_example_is_checked() -> None:
    # The WebSocket examples (ws_*.py) are run by tests/test_ws_examples.py.
    on_disk = {path.name for path in EXAMPLES.glob("*.py") if not path.name.startswith("ws_")}
    assert on_disk == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_runs(name: str) -> None:
    result = run_example(name)
    assert result.returncode == 0, result.stderr
    for line in EXPECTED[name]:
        assert line in result.stdout, f"{line!r} missing from:\n{result.stdout}"


def _read_lines(stream: object, lines: queue.Queue[str]) -> None:
    for line in stream:  # type: ignore[attr-defined]
        lines.put(line)


def test_tutorial_client_against_cli_echo_server() -> None:
    """The tutorial's last step: ``python -m trionet echo`` and the client in two programs."""
    server = subprocess.Popen(
        [sys.executable, "-m", "trionet", "echo", "--tcp", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=_read_lines, args=(server.stdout, lines), daemon=True).start()
        port = None
        while True:
            line = lines.get(timeout=TIMEOUT).strip()
            if line.startswith("tcp echo listening on "):
                port = line.rsplit(":", 1)[1]
            if line == "READY":
                break
        assert port is not None
        result = run_example("echo_client_events.py", port)
        assert result.returncode == 0, result.stderr
        assert "client: 34 bytes echoed" in result.stdout
        server.send_signal(signal.SIGTERM if os.name == "posix" else signal.SIGINT)
        assert server.wait(timeout=TIMEOUT) == 0
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        for pipe in (server.stdout, server.stderr):
            if pipe is not None:
                pipe.close()
