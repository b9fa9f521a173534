"""The one dispatcher: where events meet user code.

A connection hands every event to its :class:`Dispatcher` and awaits it in its own network
task, so a slow callback or a full channel slows the reader, and TCP flow control slows the
peer.  Two kinds exist:

* :class:`CallbackDispatcher` calls a handler object's callbacks (snake_case or 4D camelCase
  names, plain functions or ``async def``) inline;
* :class:`ChannelDispatcher` puts events into a bounded :class:`~trionet._channel.EventQueue`
  read through its :class:`~trionet._channel.EventChannel` (the ``events()`` style).

The same dispatcher serves TCP connections and listeners, WebSocket connections and
servers: only the table of callback names differs.

A callback that raises is reported as :class:`HandlerFailure`, which the connection turns into
its ``error`` event; nothing a callback raises reaches a nursery.
"""

from __future__ import annotations

import inspect
import types
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from ._channel import EventQueue
from ._events import TCPEventType
from ._wsevents import WebSocketEventType

__all__ = [
    "CONNECTION_CALLBACKS",
    "LISTENER_CALLBACKS",
    "WEBSOCKET_CALLBACKS",
    "WEBSOCKET_SERVER_CALLBACKS",
    "CallbackDispatcher",
    "ChannelDispatcher",
    "Dispatcher",
    "HandlerFailure",
    "call_user",
    "resolve_callbacks",
]

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

#: Event type -> callback names of a WebSocket connection handler (server or client side).
WEBSOCKET_CALLBACKS: Mapping[WebSocketEventType, tuple[str, str]] = {
    WebSocketEventType.OPEN: ("on_open", "onOpen"),
    WebSocketEventType.MESSAGE: ("on_message", "onMessage"),
    WebSocketEventType.ERROR: ("on_error", "onError"),
    WebSocketEventType.TERMINATE: ("on_terminate", "onTerminate"),
}

#: Event type -> callback names of a WebSocket server handler.
WEBSOCKET_SERVER_CALLBACKS: Mapping[WebSocketEventType, tuple[str, str]] = {
    WebSocketEventType.CONNECTION: ("on_connection", "onConnection"),
    WebSocketEventType.OPEN: ("on_open", "onOpen"),
    WebSocketEventType.ERROR: ("on_error", "onError"),
    WebSocketEventType.TERMINATE: ("on_terminate", "onTerminate"),
}

Callback = Callable[[Any, Any], Any]

# The event types that carry data, and so wait for room in a full events() queue.
_DATA_TYPES = frozenset({TCPEventType.DATA, WebSocketEventType.MESSAGE})

_Coroutine = types.CoroutineType


class HandlerFailure(Exception):
    """A user callback raised; ``__cause__`` is what it raised."""

    def __init__(self, name: str, exc: BaseException) -> None:
        super().__init__(f"{name} raised {type(exc).__name__}: {exc}")
        self.name = name  # the callback's name, e.g. "on_data"


def resolve_callbacks(
    handler: object, names: Mapping[Any, tuple[str, str]], *, argument: str
) -> dict[Any, tuple[str, Callback]]:
    """Find ``handler``'s callbacks once, so dispatching is a dictionary lookup.

    ``handler`` is an object with methods, or a mapping of names to callables (the shape
    of a 4D options object).  The snake_case name wins when both spellings exist.

    Raises:
        TypeError: ``handler`` has none of the callbacks, or one of them is not callable;
            the message names ``argument``.
    """
    found: dict[Any, tuple[str, Callback]] = {}
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

    __slots__ = ()

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

    def wants(self, event_type: Any) -> bool:
        """Whether an event of ``event_type`` would reach anyone (else it need not be made)."""
        return True

    def finish(self) -> None:
        """No event will follow (``terminate`` was delivered)."""


class CallbackDispatcher(Dispatcher):
    """Calls a handler object's callbacks inline, in the network task."""

    __slots__ = ("_callbacks",)

    def __init__(self, callbacks: dict[Any, tuple[str, Callback]]) -> None:
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

    def wants(self, event_type: Any) -> bool:
        """Whether the handler has a callback for ``event_type``."""
        return event_type in self._callbacks

    def failure(self, event: Any, exc: Exception) -> HandlerFailure:
        """The :class:`HandlerFailure` naming the callback that raised ``exc``."""
        entry = self._callbacks.get(event.type)
        return HandlerFailure(entry[0] if entry else "the handler", exc)


class ChannelDispatcher(Dispatcher):
    """Puts events into a bounded :class:`~trionet._channel.EventQueue` (``events()`` style)."""

    __slots__ = ("_queue",)

    def __init__(self, queue: EventQueue[Any]) -> None:
        super().__init__()
        self._queue = queue  # the queue behind the connection's events() channel

    def start(self, owner: object, event: Any) -> Awaitable[Any] | None:
        """Queue ``event``; return the wait for room if the queue is now full.

        The event is queued before any wait, so a cancelled wait loses nothing; an event
        for a consumer that has closed every receiving end is dropped.
        """
        queue = self._queue
        queue.put(event)
        # Only data waits for room: lifecycle events are a few per connection, and holding
        # one back would hold back the end of the connection (its close, its terminate).
        if queue.full and event.type in _DATA_TYPES:
            return queue.wait_room()
        return None

    def finish(self) -> None:
        """Consumers see the end of the channel once they took what is queued."""
        self._queue.finish()
