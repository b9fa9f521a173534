"""The TCP connection lifecycle as one transition table (no I/O, no trio).

Theory of operation
-------------------
A connection is driven by *inputs* — things the network task observed or the user asked
for — and answers each with a new state and the event types to deliver, in order.  The I/O
layer never decides on its own which event comes next: it feeds an input, delivers whatever
the table says, and acts on the new state.  That is what makes the promised sequence

    connection · data* · (close | error) · terminate        (or  error · terminate)

hold whatever ends a connection: every path to ``TERMINATED`` in the table below emits
exactly one of ``close``/``error`` before it and exactly one ``terminate`` at the end.

States::

    CONNECTING ──CONNECTED──▶ OPEN ──PEER_EOF──▶ READ_CLOSED ──CLOSE/SHUTDOWN──▶ CLOSING
        │                      │ ╲                                                 │
        │                      │  ╲──SHUTDOWN──▶ WRITE_CLOSED ──PEER_EOF/CLOSE──▶ CLOSING
        │                      │                                                    │
        └────FAIL/CLOSE────────┴────CLOSE (from OPEN)──────────────▶ CLOSING ──FINISHED──▶ CLOSED
                                                                   any ──FAIL──▶ CLOSED
                                                      CLOSED ──RELEASE──▶ TERMINATED

* ``READ_CLOSED``: the peer sent FIN, ``close`` was delivered, we may still send.
* ``WRITE_CLOSED``: we sent FIN (``shutdown()``), we keep reading until the peer's FIN.
* ``CLOSING``: we are ending the connection: flushing, sending FIN, draining.  Data read
  now is discarded: the consumer was already told ``close``.
* ``CLOSED``: the socket is closed; only ``RELEASE`` (the scope exit) remains.

An input that the table does not list for a state is a bug in the caller and raises
:class:`~trionet.LocalProtocolError`.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Generic, TypeVar

from ._events import TCPEventType
from ._exceptions import LocalProtocolError

__all__ = ["Input", "Lifecycle", "State", "StateMachine", "TRANSITIONS"]

S = TypeVar("S", bound=enum.Enum)
I = TypeVar("I", bound=enum.Enum)  # noqa: E741 - S, I, T: state, input, event type
T = TypeVar("T")


class State(enum.Enum):
    """Where a connection is in its life."""

    # Members are singletons compared by identity; hashing by identity too makes the
    # table lookup (done for every chunk) a C-level operation instead of Enum's
    # Python-level hash of the member name.
    __hash__ = object.__hash__

    CONNECTING = "connecting"
    OPEN = "open"
    READ_CLOSED = "read-closed"
    WRITE_CLOSED = "write-closed"
    CLOSING = "closing"
    CLOSED = "closed"
    TERMINATED = "terminated"


class Input(enum.Enum):
    """What the network task observed, or what the user asked for."""

    __hash__ = object.__hash__  # see State

    CONNECTED = "connected"  # the connect (or accept) succeeded
    DATA = "data"  # bytes arrived
    PEER_EOF = "peer-eof"  # the peer sent FIN
    SHUTDOWN = "shutdown"  # the user half-closed our side
    CLOSE = "close"  # the user (or a scope) asked for an orderly end
    FINISHED = "finished"  # our side of the orderly end is done, socket closed
    FAIL = "fail"  # something broke: reset, timeout, handler raised
    RELEASE = "release"  # the connection's scope is exiting


_T = TCPEventType
_NONE: tuple[TCPEventType, ...] = ()

#: (state, input) -> (next state, event types to deliver in order)
TRANSITIONS: dict[tuple[State, Input], tuple[State, tuple[TCPEventType, ...]]] = {
    (State.CONNECTING, Input.CONNECTED): (State.OPEN, (_T.CONNECTION,)),
    (State.CONNECTING, Input.FAIL): (State.CLOSED, (_T.ERROR,)),
    # Terminated before the connect finished: a failed connect, so error · terminate.
    (State.CONNECTING, Input.CLOSE): (State.CLOSED, (_T.ERROR,)),
    (State.OPEN, Input.DATA): (State.OPEN, (_T.DATA,)),
    (State.OPEN, Input.PEER_EOF): (State.READ_CLOSED, (_T.CLOSE,)),
    (State.OPEN, Input.SHUTDOWN): (State.WRITE_CLOSED, _NONE),
    (State.OPEN, Input.CLOSE): (State.CLOSING, (_T.CLOSE,)),
    (State.OPEN, Input.FAIL): (State.CLOSED, (_T.ERROR,)),
    (State.READ_CLOSED, Input.SHUTDOWN): (State.CLOSING, _NONE),
    (State.READ_CLOSED, Input.CLOSE): (State.CLOSING, _NONE),
    # close was delivered already; a later failure is recorded, not delivered.
    (State.READ_CLOSED, Input.FAIL): (State.CLOSED, _NONE),
    (State.WRITE_CLOSED, Input.DATA): (State.WRITE_CLOSED, (_T.DATA,)),
    (State.WRITE_CLOSED, Input.SHUTDOWN): (State.WRITE_CLOSED, _NONE),
    (State.WRITE_CLOSED, Input.PEER_EOF): (State.CLOSING, (_T.CLOSE,)),
    (State.WRITE_CLOSED, Input.CLOSE): (State.CLOSING, (_T.CLOSE,)),
    (State.WRITE_CLOSED, Input.FAIL): (State.CLOSED, (_T.ERROR,)),
    (State.CLOSING, Input.DATA): (State.CLOSING, _NONE),
    (State.CLOSING, Input.PEER_EOF): (State.CLOSING, _NONE),
    (State.CLOSING, Input.SHUTDOWN): (State.CLOSING, _NONE),
    (State.CLOSING, Input.CLOSE): (State.CLOSING, _NONE),
    (State.CLOSING, Input.FINISHED): (State.CLOSED, _NONE),
    (State.CLOSING, Input.FAIL): (State.CLOSED, _NONE),
    (State.CLOSED, Input.SHUTDOWN): (State.CLOSED, _NONE),
    (State.CLOSED, Input.CLOSE): (State.CLOSED, _NONE),
    (State.CLOSED, Input.FAIL): (State.CLOSED, _NONE),
    (State.CLOSED, Input.RELEASE): (State.TERMINATED, (_T.TERMINATE,)),
}

#: States in which ``send()`` is accepted (CONNECTING queues the data).
SENDABLE = frozenset({State.CONNECTING, State.OPEN, State.READ_CLOSED})


class StateMachine(Generic[S, I, T]):
    """A current state, advanced only through a transition table.

    Each connection kind has its own table (TCP's :data:`TRANSITIONS` here, WebSocket's in
    :mod:`trionet._wsstate`); this class is the one way either is applied.
    """

    __slots__ = ("_table", "state")

    def __init__(self, table: Mapping[tuple[S, I], tuple[S, tuple[T, ...]]], state: S) -> None:
        self._table = table  # (state, input) -> (next state, events to deliver)
        #: Where the connection is now.
        self.state = state

    def handle(self, what: I) -> tuple[T, ...]:
        """Apply ``what`` and return the event types to deliver, in order.

        Raises:
            LocalProtocolError: ``what`` is not allowed in the current state.
        """
        try:
            self.state, events = self._table[self.state, what]
        except KeyError:
            raise LocalProtocolError(
                f"{what.value!r} is not allowed while the connection is {self.state.value}"
            ) from None
        return events

    def allows(self, what: I) -> bool:
        """Whether ``what`` is a legal input in the current state."""
        return (self.state, what) in self._table


class Lifecycle(StateMachine[State, Input, TCPEventType]):
    """The current state of one TCP connection, advanced only through :data:`TRANSITIONS`."""

    __slots__ = ()

    def __init__(self, state: State = State.CONNECTING) -> None:
        super().__init__(TRANSITIONS, state)

    @property
    def can_send(self) -> bool:
        """Whether ``send()`` accepts data now."""
        return self.state in SENDABLE

    @property
    def ended(self) -> bool:
        """Whether ``close`` or ``error`` has been decided (nothing more will be read)."""
        return self.state in (State.CLOSED, State.TERMINATED)
