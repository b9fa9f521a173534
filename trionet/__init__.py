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
from ._godot_errors import Error as Error
from ._godot_server import TCPServer as TCPServer
from ._godot_tcp import StreamPeerTCP as StreamPeerTCP
from ._godot_types import AABB as AABB
from ._godot_types import Basis as Basis
from ._godot_types import Color as Color
from ._godot_types import NodePath as NodePath
from ._godot_types import PackedColorArray as PackedColorArray
from ._godot_types import PackedStringArray as PackedStringArray
from ._godot_types import PackedVector2Array as PackedVector2Array
from ._godot_types import PackedVector3Array as PackedVector3Array
from ._godot_types import PackedVector4Array as PackedVector4Array
from ._godot_types import Plane as Plane
from ._godot_types import Projection as Projection
from ._godot_types import Quaternion as Quaternion
from ._godot_types import Rect2 as Rect2
from ._godot_types import Rect2i as Rect2i
from ._godot_types import StringName as StringName
from ._godot_types import Transform2D as Transform2D
from ._godot_types import Transform3D as Transform3D
from ._godot_types import Vector2 as Vector2
from ._godot_types import Vector2i as Vector2i
from ._godot_types import Vector3 as Vector3
from ._godot_types import Vector3i as Vector3i
from ._godot_types import Vector4 as Vector4
from ._godot_types import Vector4i as Vector4i
from ._listener import TCPListener as TCPListener
from ._streampeer import StreamPeer as StreamPeer
from ._variant import bytes_to_var as bytes_to_var
from ._variant import var_to_bytes as var_to_bytes
from ._version import __version__ as __version__
from ._websocket import WebSocket as WebSocket
from ._wsconnection import WebSocketConnection as WebSocketConnection
from ._wsevents import CloseCode as CloseCode
from ._wsevents import WebSocketEvent as WebSocketEvent
from ._wsevents import WebSocketEventType as WebSocketEventType
from ._wsevents import WebSocketRequest as WebSocketRequest
from ._wshandshake import HandshakeLimits as HandshakeLimits
from ._wsoptions import WebSocketOptions as WebSocketOptions
from ._wsserver import WebSocketServer as WebSocketServer

__all__ = [
    "AABB",
    "Basis",
    "Color",
    "ConnectionClosedError",
    "Error",
    "ErrorCode",
    "ErrorRecord",
    "ListenError",
    "LocalProtocolError",
    "NodePath",
    "PackedColorArray",
    "PackedStringArray",
    "PackedVector2Array",
    "PackedVector3Array",
    "PackedVector4Array",
    "Plane",
    "Projection",
    "Quaternion",
    "Rect2",
    "Rect2i",
    "RemoteProtocolError",
    "StreamPeer",
    "StreamPeerTCP",
    "StringName",
    "TCPConnection",
    "TCPEvent",
    "TCPEventType",
    "TCPListener",
    "TCPServer",
    "Transform2D",
    "Transform3D",
    "TrionetError",
    "Vector2",
    "Vector2i",
    "Vector3",
    "Vector3i",
    "Vector4",
    "Vector4i",
    "bytes_to_var",
    "var_to_bytes",
    "WebSocket",
    "WebSocketConnection",
    "WebSocketEvent",
    "WebSocketEventType",
    "WebSocketOptions",
    "WebSocketRequest",
    "WebSocketServer",
    "CloseCode",
    "HandshakeLimits",
    "__version__",
]
