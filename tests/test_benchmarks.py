"""The benchmark code stays runnable: one quick workload against one trionet server.

Not a measurement (the figure means nothing here), only a guard against the benchmarks
rotting: the WebSocket load client must complete handshakes and echoes against trionet,
and the report must carry a number.  Bounded: about 2 s, killed after 60 s.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def test_quick_ws_workload_reports_a_rate(tmp_path: Path) -> None:
    out = tmp_path / "result.json"
    command = [
        sys.executable,
        str(BENCHMARKS / "run.py"),
        "--suite=ws",
        "--servers=trionet-ws-handler",
        "--workloads=ws_small_c1",
        "--quick",
        "--duration=0.5",
        "--no-files",
        f"--json={out}",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "| trionet-ws-handler |" in done.stdout
    result = json.loads(out.read_text())["results"]["trionet-ws-handler"]["ws_small_c1"]
    assert result["failures"] == []
    assert result["median"] > 0
    assert "Load client:" in done.stdout


def test_client_masking_matches_rfc_6455() -> None:
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import loadclient_ws
    finally:
        sys.path.remove(str(BENCHMARKS))
    key, payload = b"\x37\xfa\x21\x3d", bytes(range(256)) * 3 + b"abc"
    naive = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    assert loadclient_ws.mask(payload, key) == naive
    frame = loadclient_ws.client_frame(0x1, b"Hello")
    assert frame[0] == 0x81
    assert frame[1] == 0x80 | 5
    assert loadclient_ws.mask(frame[6:], frame[2:6]) == b"Hello"


def test_plot_and_json_paths_get_the_suite_when_several_suites_run() -> None:
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import run
    finally:
        sys.path.remove(str(BENCHMARKS))
    path = Path("docs/_static/bench-ws.png")
    assert run.for_suite(path, "ws", "ws") == path
    assert run.for_suite(path, "ws", "all") == Path("docs/_static/bench-ws-ws.png")
    assert run.for_suite(path, "tcp", "all") == Path("docs/_static/bench-ws-tcp.png")
