"""Sessions: tests, lint (ruff + mypy --strict), docs (Sphinx, warnings are errors), bench."""

from __future__ import annotations

from pathlib import Path

import nox

nox.options.sessions = ["tests", "lint", "docs"]
nox.options.reuse_existing_virtualenvs = True

# Sessions run on the interpreter that runs nox (3.11 here; any version trio supports works).


@nox.session
def tests(session: nox.Session) -> None:
    """Run the test suite (network traffic stays on 127.0.0.1)."""
    session.install("-e", ".[test]")
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff (lint and format check) and mypy --strict."""
    session.install("-e", ".", "ruff", "mypy")
    paths = ["trionet", "tests", "benchmarks", "noxfile.py", "docs"]
    session.run("ruff", "check", *paths)
    session.run("ruff", "format", "--check", *paths)
    session.run("mypy", "--strict", "trionet")


@nox.session
def docs(session: nox.Session) -> None:
    """Build the Sphinx docs; any warning fails the build."""
    session.install("-e", ".", "sphinx>=7")
    session.run("sphinx-build", "-W", "--keep-going", "-b", "html", "docs", "docs/_build/html")


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks: trionet's WebSocket and TCP servers against their peers (not CI).

    ``nox -s bench -- --quick`` is a smoke run (under a minute); other arguments go to
    ``benchmarks/run.py`` (``-- --help`` lists them).  matplotlib draws the plot.
    """
    session.install("-e", ".", "websockets", "trio-websocket", "matplotlib", "psutil")
    session.run("python", "benchmarks/run.py", "--suite", "all", *session.posargs)
    quick = ["--quick"] if "--quick" in session.posargs else []
    session.run("python", "benchmarks/godot_tcp.py", *quick)
    if Path("benchmarks/godot_codec.py").exists():
        session.run("python", "benchmarks/godot_codec.py", *quick)


@nox.session(python=["3.10", "3.11", "3.12", "3.13"])
def compat(session: nox.Session) -> None:
    """The test suite on every Python version trio supports (those installed here)."""
    session.install("-e", ".[test]")
    session.run("pytest", *session.posargs)
