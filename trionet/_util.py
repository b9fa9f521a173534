"""Small helpers shared by the public classes: argument checks, scopes, thread hops."""

from __future__ import annotations

import math
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import trio

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup  # type: ignore[import-not-found]

__all__ = [
    "call_soon_in",
    "check_bool",
    "check_port",
    "check_timeout",
    "current_token",
    "in_trio_thread",
    "unwrap_body_error",
    "url_host",
]


def check_port(port: object, *, argument: str = "port") -> int:
    """Return ``port`` if it is an ``int`` in 0..65535.

    Raises:
        TypeError: ``port`` is not an ``int`` (``bool`` is refused too).
        ValueError: ``port`` is outside 0..65535.
    """
    if isinstance(port, bool) or not isinstance(port, int):
        raise TypeError(f"{argument} must be an int, not {type(port).__name__}")
    if not 0 <= port <= 65535:
        raise ValueError(f"{argument} must be in 0..65535, got {port}")
    return port


def check_bool(value: object, *, argument: str) -> bool:
    """Return ``value`` if it is a ``bool``.

    Raises:
        TypeError: ``value`` is not a ``bool`` (``0``/``1`` are refused: they hide mistakes).
    """
    if not isinstance(value, bool):
        raise TypeError(f"{argument} must be a bool, not {type(value).__name__}")
    return value


def check_timeout(value: object, *, argument: str, allow_none: bool = False) -> float:
    """Return ``value`` as a positive float number of seconds (``inf`` for ``None``).

    Raises:
        TypeError: ``value`` is not a number.
        ValueError: ``value`` is not positive, or is NaN.
    """
    if value is None and allow_none:
        return math.inf
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{argument} must be a number of seconds, not {type(value).__name__}")
    if math.isnan(value) or value <= 0:
        raise ValueError(f"{argument} must be a positive number of seconds, got {value!r}")
    return float(value)


def url_host(host: str) -> str:
    """``host`` as it goes in a URL or before ``:port``: IPv6 addresses in brackets."""
    return f"[{host}]" if ":" in host else host


def current_token() -> trio.lowlevel.TrioToken | None:
    """The running trio's token, or ``None`` outside trio."""
    try:
        return trio.lowlevel.current_trio_token()
    except RuntimeError:
        return None


def in_trio_thread(token: trio.lowlevel.TrioToken | None) -> bool:
    """Whether the caller runs inside the trio run that ``token`` belongs to."""
    return token is not None and current_token() is token


def call_soon_in(token: trio.lowlevel.TrioToken | None, fn: Callable[[], None]) -> None:
    """Run ``fn`` now if we are in ``token``'s run, else schedule it there (thread-safe)."""
    if token is None or in_trio_thread(token):
        fn()
    else:
        token.run_sync_soon(fn)


@asynccontextmanager
async def unwrap_body_error() -> AsyncIterator[None]:
    """Re-raise a lone exception from an ``async with`` body without its exception group.

    Our internal tasks never raise, so when a nursery-owning context manager fails the
    group holds exactly the body's exception; the caller should see that exception as
    it was raised, not wrapped.
    """
    try:
        yield
    except BaseExceptionGroup as group:
        if len(group.exceptions) == 1 and not isinstance(group.exceptions[0], BaseExceptionGroup):
            raise group.exceptions[0] from None
        raise


async def end_within(
    deadline: float,
    budget: float,
    wind_down: Callable[[], Awaitable[None]],
    release: Callable[[bool], Awaitable[None]],
) -> None:
    """A connection's end: ``wind_down`` until ``deadline``, then ``release`` with a budget.

    Both run shielded.  ``release(timed_out)`` always gets ``budget`` seconds of its own
    (``terminate`` must be delivered even after a wind-down that ran out of time).  When
    the wind-down is in time, the same scope carries the release: one cancel scope per
    connection instead of two (a scope costs as much as a few system calls).
    """
    wound_down = released = False
    with trio.CancelScope(shield=True, deadline=deadline) as ending:
        await wind_down()
        wound_down = True
        if not ending.cancel_called:
            ending.deadline = trio.current_time() + budget
            released = True
            await release(False)
    if not released:
        with trio.CancelScope(shield=True) as releasing:
            releasing.deadline = trio.current_time() + budget
            await release(not wound_down)
