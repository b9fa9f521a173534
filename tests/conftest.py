"""Shared fixtures: leak checks for file descriptors and trio tasks."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest
import trio


def open_fds() -> set[int]:
    """The file descriptors this process has open now."""
    return {int(name) for name in os.listdir("/proc/self/fd")}


class TaskCounter(trio.abc.Instrument):
    """Counts tasks spawned and exited while installed."""

    def __init__(self) -> None:
        self.spawned = 0
        self.exited = 0

    def task_spawned(self, task: trio.lowlevel.Task) -> None:
        self.spawned += 1

    def task_exited(self, task: trio.lowlevel.Task) -> None:
        self.exited += 1

    @property
    def alive(self) -> int:
        return self.spawned - self.exited


@pytest.fixture
async def task_counter() -> AsyncIterator[TaskCounter]:
    """A TaskCounter installed (inside the test's trio run) for the test's duration."""
    counter = TaskCounter()
    trio.lowlevel.add_instrument(counter)
    try:
        yield counter
    finally:
        trio.lowlevel.remove_instrument(counter)


@pytest.fixture(params=["python", "compiled"])
def variant_decoder(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test once with each decoding loop of the Godot codec.

    The compiled loop is optional at install time; without it the "compiled" run skips,
    except under CI (env ``CI``), which builds it and where its absence is a failure.
    """
    from trionet import _variant_decode

    if request.param == "compiled":
        if _variant_decode.COMPILED_DECODE is None:
            if os.environ.get("CI"):
                pytest.fail("the compiled variant decoder must be built under CI")
            pytest.skip("trionet._variant_speedups is not built")
        monkeypatch.setattr(_variant_decode, "_DECODE", _variant_decode.COMPILED_DECODE)
    else:
        monkeypatch.setattr(_variant_decode, "_DECODE", _variant_decode.PYTHON_DECODE)
    return str(request.param)
