"""trionet: 4D's TCP and WebSocket classes and Godot's StreamPeerTCP, on trio.

The public names are re-exported here; the modules that define them are private.
"""

from ._connection import TCPConnection as TCPConnection
from ._events import ErrorCode as ErrorCode
from ._events import ErrorRecord as ErrorRecord
from ._events import TCPEvent as TCPEvent
from ._events import TCPEventType as TCPEventType
from ._exceptions import ConnectionClosedError as ConnectionClosedError
from ._exceptions import ListenError as ListenError
from ._exceptions import LocalProtocolError as LocalProtocolError
from ._exceptions import RemoteProtocolError as RemoteProtocolError
from ._exceptions import TrionetError as TrionetError
from ._listener import TCPListener as TCPListener
from ._version import __version__ as __version__

__all__ = [
    "ConnectionClosedError",
    "ErrorCode",
    "ErrorRecord",
    "ListenError",
    "LocalProtocolError",
    "RemoteProtocolError",
    "TCPConnection",
    "TCPEvent",
    "TCPEventType",
    "TCPListener",
    "TrionetError",
    "__version__",
]
