"""The WebSocket protocol modules are sans-I/O: they import and work without trio."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_protocol_modules_import_without_trio() -> None:
    script = textwrap.dedent(
        """
        import importlib.util, sys, types
        sys.modules["trio"] = None  # any "import trio" now fails
        package = types.ModuleType("trionet")
        package.__path__ = [sys.argv[1]]
        sys.modules["trionet"] = package  # skip trionet/__init__, which imports trio
        for name in ("_wsevents", "_wsstate", "_wshandshake", "_wshttp", "_wsproto"):
            importlib.import_module("trionet." + name)
        from trionet._wshandshake import HeadReader, HandshakeLimits
        head, rest = HeadReader(HandshakeLimits()).feed(b"GET / HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n!")
        assert rest == b"!"
        print("ok")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(ROOT / "trionet")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_every_table_entry_is_reachable_and_ends_in_one_terminate() -> None:
    from trionet._wsstate import WS_TRANSITIONS, WSInput, WSState

    # From every state, the events on any path to TERMINATED hold at most one error and
    # exactly one terminate, always last (checked over all input sequences up to length 6).
    def walk(state: WSState, emitted: tuple[str, ...], depth: int) -> None:
        assert emitted.count("error") <= 1
        assert emitted.count("terminate") <= 1
        if "terminate" in emitted:
            assert emitted[-1] == "terminate"
            assert state is WSState.TERMINATED
        if depth == 0:
            return
        for what in WSInput:
            entry = WS_TRANSITIONS.get((state, what))
            if entry is not None:
                walk(entry[0], emitted + tuple(e.value for e in entry[1]), depth - 1)

    walk(WSState.CONNECTING, (), 6)
    reached = {WSState.CONNECTING} | {nxt for nxt, _ in WS_TRANSITIONS.values()}
    assert reached == set(WSState)
