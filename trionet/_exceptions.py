"""The one exception tree of trionet.

Everything trionet raises on purpose derives from :class:`TrionetError`::

    TrionetError
    ├── LocalProtocolError      the caller used the API in a way it does not allow
    │   └── ConnectionClosedError   send() on a connection that can no longer send
    ├── RemoteProtocolError     the peer broke the protocol
    └── ListenError             a listener could not bind (also an OSError)

Bad argument values and types are reported with the built-in :class:`ValueError` and
:class:`TypeError`, whose messages name the argument.  Errors that come from the network
while a connection runs are never raised into the caller's nursery: they become ``error``
events and :class:`~trionet.ErrorRecord` entries in ``errors``.
"""

from __future__ import annotations

__all__ = [
    "ConnectionClosedError",
    "ListenError",
    "LocalProtocolError",
    "RemoteProtocolError",
    "TrionetError",
]


class TrionetError(Exception):
    """Root of every exception trionet raises on purpose."""


class LocalProtocolError(TrionetError):
    """The caller did something the API does not allow in the current state.

    Examples: calling ``events()`` on a connection that has a handler, or awaiting
    ``wait()`` from inside that connection's own callback (which would deadlock).
    """


class ConnectionClosedError(LocalProtocolError):
    """``send()`` was called on a connection whose sending side is closed.

    The data was *not* accepted.  ``errors`` on the connection tells why it closed.
    """


class RemoteProtocolError(TrionetError):
    """The peer sent something the protocol does not allow."""


class ListenError(TrionetError, OSError):
    """A listener could not bind its port (in use, permission denied, bad address).

    It is an :class:`OSError` too, with ``errno`` copied from the system's error, so code
    that catches ``OSError`` around a bind keeps working.
    """
