"""The one dispatcher: where events meet user code.

A connection hands every event to its :class:`Dispatcher` and awaits it in its own network
task, so a slow callback or a full channel slows the reader, and TCP flow control slows the
peer.  Two kinds exist:

* :class:`CallbackDispatcher` calls a handler object's callbacks (snake_case or 4D camelCase
  names, plain functions or ``async def``) inline;
* :class:`ChannelDispatcher` puts events into a bounded memory channel read through
  :class:`EventChannel` (the ``events()`` style).

A callback that raises is reported as :class:`HandlerFailure`, which the connection turns into
its ``error`` event; nothing a callback raises reaches a nursery.
"""

from __future__ import annotations

import inspect
import types
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Generic, TypeVar

import trio

from ._events import TCPEventType

__all__ = [
    "CONNECTION_CALLBACKS",
    "LISTENER_CALLBACKS",
    "CallbackDispatcher",
    "ChannelDispatcher",
    "Dispatcher",
    "EventChannel",
    "HandlerFailure",
    "call_user",
    "resolve_callbacks",
]

E = TypeVar("E")

#: Event type -> (snake_case name, 4D camelCase name) of a connection handler's callback.
CONNECTION_CALLBACKS: Mapping[TCPEventType, tuple[str, str]] = {
    TCPEventType.CONNECTION: ("on_connection", "onConnection"),
    TCPEventType.DATA: ("on_data", "onData"),
    TCPEventType.CLOSE: ("on_shutdown", "onShutdown"),
    TCPEventType.ERROR: ("on_error", "onError"),
    TCPEventType.TERMINATE: ("on_terminate", "onTerminate"),
}

#: Event type -> callback names of a listener handler.
LISTENER_CALLBACKS: Mapping[TCPEventType, tuple[str, str]] = {
    TCPEventType.CONNECTION: ("on_connection", "onConnection"),
    TCPEventType.ERROR: ("on_error", "onError"),
    TCPEventType.TERMINATE: ("on_terminate", "onTerminate"),
}

Callback = Callable[[Any, Any], Any]

_Coroutine = types.CoroutineType


class HandlerFailure(Exception):
    """A user callback raised; ``__cause__`` is what it raised."""

    def __init__(self, name: str, exc: BaseException) -> None:
        super().__init__(f"{name} raised {type(exc).__name__}: {exc}")
        self.name = name  # the callback's name, e.g. "on_data"


def resolve_callbacks(
    handler: object, names: Mapping[TCPEventType, tuple[str, str]], *, argument: str
) -> dict[TCPEventType, tuple[str, Callback]]:
    """Find ``handler``'s callbacks once, so dispatching is a dictionary lookup.

    ``handler`` is an object with methods, or a mapping of names to callables (the shape
    of a 4D options object).  The snake_case name wins when both spellings exist.

    Raises:
        TypeError: ``handler`` has none of the callbacks, or one of them is not callable;
            the message names ``argument``.
    """
    found: dict[TCPEventType, tuple[str, Callback]] = {}
    for event_type, spellings in names.items():
        for name in spellings:
            if isinstance(handler, Mapping):
                callback = handler.get(name)
            else:
                callback = getattr(handler, name, None)
            if callback is None:
                continue
            if not callable(callback):
                raise TypeError(
                    f"{argument}.{name} must be callable, not {type(callback).__name__}"
                )
            found[event_type] = (name, callback)
            break
    if not found:
        wanted = ", ".join(spellings[0] for spellings in names.values())
        raise TypeError(
            f"{argument} must have at least one of the callbacks {wanted} "
            f"(or their camelCase names); got {type(handler).__name__}"
        )
    return found


async def call_user(name: str, callback: Callback, owner: object, event: object) -> Any:
    """Call ``callback(owner, event)``, awaiting it if it is async.

    Raises:
        HandlerFailure: the callback raised an :class:`Exception` (cancellation and other
            :class:`BaseException` pass through untouched).
    """
    try:
        result = callback(owner, event)
        if inspect.isawaitable(result):
            result = await result
    except Exception as exc:
        raise HandlerFailure(name, exc) from exc
    return result


class Dispatcher:
    """Delivers one connection's events, in order."""

    __slots__ = ("owed",)

    def __init__(self) -> None:
        #: An event whose delivery was interrupted by cancellation before the consumer
        #: got it (channel style only: a callback that started has received its event).
        self.owed: Any = None

    async def deliver(self, owner: object, event: Any) -> None:
        """Hand ``event`` to the consumer; returns when the consumer has taken it.

        Raises:
            HandlerFailure: a callback raised.
        """
        pending = self.start(owner, event)
        if pending is not None:
            try:
                await pending
            except Exception as exc:
                raise self.failure(event, exc) from exc

    def start(self, owner: object, event: Any) -> Awaitable[Any] | None:
        """Begin delivering ``event``; return what is left to await, if anything.

        This is :meth:`deliver` without its own coroutine frame, for the per-chunk path:
        the caller awaits the result and passes an exception it raises to
        :meth:`failure`.

        Raises:
            HandlerFailure: a synchronous callback raised.
        """
        raise NotImplementedError

    def failure(self, event: Any, exc: Exception) -> HandlerFailure:
        """The :class:`HandlerFailure` for ``exc``, raised while delivering ``event``."""
        return HandlerFailure("the handler", exc)

    def finish(self) -> None:
        """No event will follow (``terminate`` was delivered)."""


class CallbackDispatcher(Dispatcher):
    """Calls a handler object's callbacks inline, in the network task."""

    __slots__ = ("_callbacks",)

    def __init__(self, callbacks: dict[TCPEventType, tuple[str, Callback]]) -> None:
        super().__init__()
        self._callbacks = callbacks  # event type -> (name, callable)

    def start(self, owner: object, event: Any) -> Awaitable[Any] | None:
        """Call the callback for ``event.type``, if the handler has one.

        Returns:
            The coroutine of an ``async`` callback (or any awaitable a callback
            returned), for the caller to await; ``None`` when nothing is left to do.

        Raises:
            HandlerFailure: a synchronous callback raised.
        """
        entry = self._callbacks.get(event.type)
        if entry is None:
            return None
        try:
            result = entry[1](owner, event)
        except Exception as exc:
            raise HandlerFailure(entry[0], exc) from exc
        if type(result) is _Coroutine or (result is not None and inspect.isawaitable(result)):
            return result
        return None

    def failure(self, event: Any, exc: Exception) -> HandlerFailure:
        """The :class:`HandlerFailure` naming the callback that raised ``exc``."""
        entry = self._callbacks.get(event.type)
        return HandlerFailure(entry[0] if entry else "the handler", exc)


class EventChannel(trio.abc.ReceiveChannel[E], Generic[E]):
    """The receiving end returned by ``events()``: a trio ``ReceiveChannel``.

    It behaves as the memory channel it wraps (``async for``, ``receive_nowait()``,
    ``clone()``, ``aclose()``) and also tells the connection when the consumer comes back for
    the event after ``close``: until then the consumer may still send on a connection whose
    peer has closed its side.
    """

    def __init__(
        self,
        inner: trio.MemoryReceiveChannel[E],
        marker: object,
        on_demand: Callable[[], None],
    ) -> None:
        self._inner = inner  # the memory channel this wraps
        self._marker = marker  # the event type after which demand is reported
        self._on_demand = on_demand  # called when the consumer asks past the marker
        self._past_marker = False  # the marker event was handed out by this clone

    def _note(self, event: E) -> E:
        if getattr(event, "type", None) is self._marker:
            self._past_marker = True
        return event

    async def receive(self) -> E:
        """Wait for and return the next event.

        Raises:
            trio.EndOfChannel: the connection has terminated and every event was received.
            trio.ClosedResourceError: this channel was closed.
        """
        if self._past_marker:
            self._on_demand()
        return self._note(await self._inner.receive())

    def receive_nowait(self) -> E:
        """Return the next event if one is ready.

        Raises:
            trio.WouldBlock: no event is ready.
            trio.EndOfChannel: the connection has terminated and every event was received.
        """
        if self._past_marker:
            self._on_demand()
        return self._note(self._inner.receive_nowait())

    def clone(self) -> EventChannel[E]:
        """Another receiving end on the same events (each event goes to one of them)."""
        return EventChannel(self._inner.clone(), self._marker, self._on_demand)

    def close(self) -> None:
        """Close this end at once."""
        self._inner.close()
        self._on_demand()

    async def aclose(self) -> None:
        """Close this end."""
        self.close()
        await trio.lowlevel.checkpoint()

    def statistics(self) -> Any:
        """The wrapped memory channel's statistics."""
        return self._inner.statistics()


class ChannelDispatcher(Dispatcher):
    """Puts events into a bounded memory channel (the ``events()`` style)."""

    __slots__ = ("_send",)

    def __init__(self, send: trio.MemorySendChannel[Any]) -> None:
        super().__init__()
        self._send = send  # the sending end; the connection closes it after terminate

    def start(self, owner: object, event: Any) -> Awaitable[Any] | None:
        """Return the coroutine that queues ``event`` (see :meth:`deliver`)."""
        return self.deliver(owner, event)

    async def deliver(self, owner: object, event: Any) -> None:
        """Queue ``event``, waiting while the channel is full (backpressure).

        An event for a consumer that has closed every receiving end is dropped.
        """
        # A full scheduler pass per event, even when the channel has room: it lets the
        # consumer act on the event (typically: send the answer) before the network task
        # reads again, so the next read usually finds data instead of costing a failed
        # recv() and an epoll registration.
        self.owed = event
        try:  # noqa: SIM105 - a try block is cheaper than contextlib.suppress per event
            await self._send.send(event)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        self.owed = None

    def finish(self) -> None:
        """Close the sending end: consumers see the end of the channel."""
        self._send.close()
