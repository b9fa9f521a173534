"""The Variant codec is sans-I/O: its modules import, and work, with trio unavailable."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import trionet

SCRIPT = textwrap.dedent(
    """
    import sys, types
    sys.modules["trio"] = None  # any "import trio" now raises ImportError
    # A bare package object, so that trionet/__init__.py (which imports trio) never runs.
    package = types.ModuleType("trionet")
    package.__path__ = [sys.argv[1]]
    sys.modules["trionet"] = package
    from trionet._variant import bytes_to_var, var_to_bytes
    from trionet._godot_types import Vector2
    assert bytes_to_var(var_to_bytes({"v": Vector2(1, 2)})) == {"v": Vector2(1, 2)}
    loaded = sorted(name for name in sys.modules if name.startswith("trionet"))
    print(" ".join(loaded))
    """
)


def test_codec_imports_and_runs_without_trio() -> None:
    package_dir = str(Path(trionet.__file__).parent)
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, package_dir],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    loaded = set(result.stdout.split())
    codec = {"_variant", "_variant_decode", "_variant_readers", "_variant_format", "_godot_types"}
    assert {f"trionet.{name}" for name in codec} <= loaded
