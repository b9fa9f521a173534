"""Run every WebSocket example of the documentation as a program, and check the budget table.

The ``docs/examples/ws_*.py`` programs are shown in the docs with ``literalinclude``.  Each
starts its own server on 127.0.0.1 with port 0, drives it with a client (the
``websockets`` synchronous client in a thread, or raw trio), checks what it got and exits
0; the subprocess timeout bounds every run.  The memory-budget table of
``docs/explanation/websocket-limits.rst`` is compared with ``memory_budget()``, so the page
cannot go stale.
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from trionet import WebSocketOptions

DOCS = Path(__file__).resolve().parent.parent / "docs"
EXAMPLES = DOCS / "examples"
TIMEOUT = 60

#: example file -> lines its standard output must contain
EXPECTED: dict[str, list[str]] = {
    "ws_echo_handler.py": [
        "server: listening",
        "server: handshake for /echo",
        "client: ['hello', b'\\x00\\x01\\x02', 'bye']",
        "server: connection 1 ended with 1000 after 3 messages",
        "server: closed",
    ],
    "ws_echo_serve.py": ["client: ['one', b'two', 'bye'], closed by the server with 1000"],
    "ws_broadcast.py": [
        "server: alice's message queued for 2 clients",
        "alice heard ['bob: hello, alice']",
        "bob heard ['alice: hi all']",
        "carol heard ['alice: hi all', 'bob: hello, alice']",
    ],
    "ws_http_page.py": [
        "GET / -> 200,",
        "GET /missing -> 404",
        "WebSocket /ws echoed 'hello'",
    ],
    "ws_auth.py": [
        "header: alice said hi",
        "query: bob said hi",
        "none: refused with HTTP 403",
    ],
    "ws_slow_clients.py": [
        "  stalled: error: the client fell 8 broadcast messages behind; closed with 1008",
        "  stalled: closed with 1008",
        "  reader: closed with 1000",
        "  the reading client received all 400 broadcasts",
        "  send raised ConnectionClosedError after",
        "send did not complete within 1 s: the peer does not read",
    ],
    "ws_limits.py": [
        "client: 4096 characters echoed: True",
        "server: closed with 1009: message larger than 4096 bytes",
        "client: closed by the server with 1009",
        "budget: 647168 bytes per connection at most",
    ],
    "ws_tls.py": ["client: 'over TLS: hello'"],
    "ws_reuse_port.py": (
        ["40 clients answered: 40", "two TCPListeners share a port too"]
        if hasattr(socket, "SO_REUSEPORT")
        else ["this system has no SO_REUSEPORT"]
    ),
}


def test_every_ws_example_is_checked() -> None:
    on_disk = {path.name for path in EXAMPLES.glob("ws_*.py")}
    assert on_disk == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_ws_example_runs(name: str) -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    for line in EXPECTED[name]:
        assert line in result.stdout, f"{line!r} missing from:\n{result.stdout}"


_ROW = re.compile(r"^``(?P<part>\w+)``\s+(?P<default>[\d,]+)\s.*?\s(?P<big>[\d,]+)(?=\s|$)")


def _budget_table() -> dict[str, tuple[int, int]]:
    text = (DOCS / "explanation" / "websocket-limits.rst").read_text(encoding="utf-8")
    rows = {}
    for line in text.splitlines():
        match = _ROW.match(line)
        if match:
            rows[match["part"]] = (
                int(match["default"].replace(",", "")),
                int(match["big"].replace(",", "")),
            )
    return rows


def test_memory_budget_table_matches_the_code() -> None:
    defaults = WebSocketOptions().memory_budget()
    big = WebSocketOptions.make(max_message_size=32 * 1024 * 1024).memory_budget()
    table = _budget_table()
    assert set(table) == set(defaults), "the table's parts differ from memory_budget()'s"
    for part, (default, large) in table.items():
        assert default == defaults[part], (
            f"{part}: the page says {default}, the code {defaults[part]}"
        )
        assert large == big[part], f"{part} at 32 MiB: the page says {large}, the code {big[part]}"
