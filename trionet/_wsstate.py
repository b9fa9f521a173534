"""The WebSocket connection lifecycle as one transition table (no I/O, no trio).

Theory of operation
-------------------
As for TCP (:mod:`trionet._state`), the network task feeds *inputs* and delivers exactly the
event types the table returns, so every connection's sequence is

    open · message* · error? · terminate          (or  error · terminate  if it never opened)

with ``terminate`` (carrying the close code and reason) exactly once, always last.  A
WebSocket connection has no half-closed states: a close frame from either side starts the
closing handshake, and after it the TCP connection is closed.

States, with the ``status`` string 4D shows for each::

    CONNECTING ─OPENED─▶ OPEN ─PEER_CLOSE/CLOSE/FAIL─▶ CLOSING ─FINISHED─▶ CLOSED ─RELEASE─▶ …
    "Connecting"       "Connected"                  "Closing"            "Closed"
        │                  │                                               ▲
        └──FAIL/CLOSE──────┴──BREAK (no close frame possible)──────────────┘

    … TERMINATED (also "Closed")

* ``OPEN``: messages flow both ways.
* ``CLOSING``: a close frame was sent or received; what the peer sends now is read and
  discarded until its close frame, the handshake's end, or the close timeout.
* ``CLOSED``: the TCP connection is closed; only ``RELEASE`` (the scope exit) remains.

``FAIL`` is a failure that still allows a close frame (protocol violation, invalid data, a
message too big, a handler that raised): ``error`` is delivered and the closing handshake
starts.  ``BREAK`` is a failure of the transport itself (reset, the peer vanished): there
is nobody to send a close frame to.  Once ``CLOSING``, later failures are recorded but not
delivered: ``error`` comes at most once, and only before the closing handshake.
"""

from __future__ import annotations

import enum

from ._state import StateMachine
from ._wsevents import WebSocketEventType

__all__ = ["STATUS", "WSInput", "WSLifecycle", "WSState", "WS_TRANSITIONS"]


class WSState(enum.Enum):
    """Where a WebSocket connection is in its life."""

    __hash__ = object.__hash__  # identity hash: the table lookup runs per message

    CONNECTING = "connecting"
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"
    TERMINATED = "terminated"


class WSInput(enum.Enum):
    """What the network task observed, or what the user asked for."""

    __hash__ = object.__hash__

    OPENED = "opened"  # the handshake completed
    MESSAGE = "message"  # a complete message arrived
    PEER_CLOSE = "peer-close"  # the peer's close frame arrived
    CLOSE = "close"  # the user, a scope or the server asked for the closing handshake
    FAIL = "fail"  # a failure that still allows sending a close frame
    BREAK = "break"  # the transport broke: no close frame can be sent
    FINISHED = "finished"  # the closing handshake is over and TCP is closed
    RELEASE = "release"  # the connection's scope is exiting


_T = WebSocketEventType
_NONE: tuple[WebSocketEventType, ...] = ()

#: (state, input) -> (next state, event types to deliver in order)
WS_TRANSITIONS: dict[tuple[WSState, WSInput], tuple[WSState, tuple[WebSocketEventType, ...]]] = {
    (WSState.CONNECTING, WSInput.OPENED): (WSState.OPEN, (_T.OPEN,)),
    # A handshake that failed, or was cut short, is a failed open: error · terminate.
    (WSState.CONNECTING, WSInput.FAIL): (WSState.CLOSED, (_T.ERROR,)),
    (WSState.CONNECTING, WSInput.BREAK): (WSState.CLOSED, (_T.ERROR,)),
    (WSState.CONNECTING, WSInput.CLOSE): (WSState.CLOSED, (_T.ERROR,)),
    (WSState.OPEN, WSInput.MESSAGE): (WSState.OPEN, (_T.MESSAGE,)),
    (WSState.OPEN, WSInput.PEER_CLOSE): (WSState.CLOSING, _NONE),
    (WSState.OPEN, WSInput.CLOSE): (WSState.CLOSING, _NONE),
    (WSState.OPEN, WSInput.FAIL): (WSState.CLOSING, (_T.ERROR,)),
    (WSState.OPEN, WSInput.BREAK): (WSState.CLOSED, (_T.ERROR,)),
    # Closing: messages still in flight from the peer are discarded.
    (WSState.CLOSING, WSInput.MESSAGE): (WSState.CLOSING, _NONE),
    (WSState.CLOSING, WSInput.PEER_CLOSE): (WSState.CLOSING, _NONE),
    (WSState.CLOSING, WSInput.CLOSE): (WSState.CLOSING, _NONE),
    (WSState.CLOSING, WSInput.FAIL): (WSState.CLOSING, _NONE),
    (WSState.CLOSING, WSInput.BREAK): (WSState.CLOSED, _NONE),
    (WSState.CLOSING, WSInput.FINISHED): (WSState.CLOSED, _NONE),
    (WSState.CLOSED, WSInput.CLOSE): (WSState.CLOSED, _NONE),
    (WSState.CLOSED, WSInput.FAIL): (WSState.CLOSED, _NONE),
    (WSState.CLOSED, WSInput.BREAK): (WSState.CLOSED, _NONE),
    (WSState.CLOSED, WSInput.FINISHED): (WSState.CLOSED, _NONE),
    (WSState.CLOSED, WSInput.RELEASE): (WSState.TERMINATED, (_T.TERMINATE,)),
}

#: The 4D ``status`` string of each state.
STATUS: dict[WSState, str] = {
    WSState.CONNECTING: "Connecting",
    WSState.OPEN: "Connected",
    WSState.CLOSING: "Closing",
    WSState.CLOSED: "Closed",
    WSState.TERMINATED: "Closed",
}


class WSLifecycle(StateMachine[WSState, WSInput, WebSocketEventType]):
    """The current state of one WebSocket connection, advanced through :data:`WS_TRANSITIONS`."""

    __slots__ = ()

    def __init__(self, state: WSState = WSState.CONNECTING) -> None:
        super().__init__(WS_TRANSITIONS, state)

    @property
    def status(self) -> str:
        """4D's status string: ``"Connecting"``, ``"Connected"``, ``"Closing"`` or ``"Closed"``."""
        return STATUS[self.state]
