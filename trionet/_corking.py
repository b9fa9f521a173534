"""Corked sends and the code that may run while they are corked (no I/O of its own).

A WebSocket connection corks its transport while it handles one received chunk, so that
all the answers go out in one write (see :meth:`trionet._transport.Transport.send_locked`).
User callbacks run inside that window; :func:`flushing_first` makes sure a callback that
waits for something does not hold back what was already sent.
"""

from __future__ import annotations

import types
from collections.abc import Awaitable, Coroutine, Generator
from typing import Any

from ._transport import Transport

__all__ = ["flushing_first"]


async def flushing_first(awaitable: Awaitable[Any], transport: Transport) -> Any:
    """Await ``awaitable``; if it is about to give up control, flush corked sends first.

    A callback that answers and returns (the common case) runs to its end in one step,
    and its answer joins the chunk's single write.  One that waits for something (a
    database, a lock, room in a queue) must not hold back what it already sent: the
    moment it first yields to the scheduler, what is pending is written.
    """
    if not isinstance(awaitable, Coroutine):
        return await awaitable
    try:
        trap = awaitable.send(None)
    except StopIteration as done:
        return done.value
    transport.flush_nowait()
    return await _resume(awaitable, trap)


@types.coroutine
def _resume(coro: Coroutine[Any, Any, Any], trap: Any) -> Generator[Any, Any, Any]:
    """Go on with ``coro`` after its first step yielded ``trap``: ``yield from`` by hand."""
    while True:
        try:
            value = yield trap
        except GeneratorExit:
            coro.close()
            raise
        except BaseException as exc:  # cancellation and the like, delivered by trio
            try:
                trap = coro.throw(exc)
            except StopIteration as done:
                return done.value
        else:
            try:
                trap = coro.send(value)
            except StopIteration as done:
                return done.value
