"""TCP echo benchmark: trionet against bare trio and asyncio (``run.py --suite tcp``).

Kept so that ``python benchmarks/tcp_echo.py [options]`` works as before; the code lives in
the modules next to it (:mod:`workloads`, :mod:`loadclient`, :mod:`report`, :mod:`run`).
"""

from __future__ import annotations

import sys

import run

if __name__ == "__main__":
    sys.exit(run.main(["--suite", "tcp", *sys.argv[1:]]))
