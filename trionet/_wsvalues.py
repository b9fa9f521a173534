"""Small WebSocket values shared by the connection and the server (no trio)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator
from typing import Any

from ._wshttp import json_text

__all__ = ["Message", "Termination", "check_close_code", "payload_of"]

#: What ``send()`` accepts.
Message = str | bytes | bytearray | memoryview | dict[str, Any] | list[Any]


def check_close_code(code: object) -> int:
    """Return ``code`` if an application may send it (RFC 6455 section 7.4).

    Raises:
        TypeError: ``code`` is not an ``int``.
        ValueError: ``code`` is reserved (1004-1006, 1015) or outside 1000-1014/3000-4999.
    """
    if isinstance(code, bool) or not isinstance(code, int):
        raise TypeError(f"code must be an int or None, not {type(code).__name__}")
    if not (1000 <= code <= 1014 or 3000 <= code <= 4999) or code in (1004, 1005, 1006):
        raise ValueError(f"code must be 1000-1003, 1007-1014 or 3000-4999, got {code}")
    return code


class Termination:
    """What ``terminate()`` returns: the close has started; await it to wait for its end.

    Calling ``terminate()`` without ``await`` (from a synchronous callback, say) is fine:
    the closing handshake goes on in the background.
    """

    __slots__ = ("_done",)

    def __init__(self, done: Callable[[], Awaitable[None]]) -> None:
        self._done = done  # waits until the close is over

    def __await__(self) -> Generator[Any, None, None]:
        return self._done().__await__()


def payload_of(message: object) -> str | bytes:
    """What goes in the frame: ``str`` (text) or ``bytes`` (binary).

    Raises:
        TypeError: ``message`` has no frame type, or cannot be encoded as JSON.
    """
    if isinstance(message, (str, bytes)):
        return message
    if isinstance(message, (bytearray, memoryview)):
        return bytes(message)
    if isinstance(message, (dict, list)):
        try:
            return json_text(message)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"message cannot be sent as JSON: {exc}") from None
    raise TypeError(f"message must be str, bytes, dict or list, not {type(message).__name__}")
