"""Test doubles for code that uses trionet: no sockets, deterministic, with faults.

* :func:`memory_stream_pair` and :class:`MemoryTCPStream`: TCP-shaped memory streams with
  bounded buffers, half-close, reset, silent drop, stalled reader, delays and fragmentation.
* :func:`open_connection_pair`: two real :class:`~trionet.TCPConnection` objects over them.
* :func:`open_memory_listener`: a real :class:`~trionet.TCPListener` accepting them.
* :class:`EventRecorder`: a handler that records events for assertions.
* :func:`open_memory_websocket_server`: a real :class:`~trionet.WebSocketServer` on memory
  streams, with clients (:meth:`MemoryWebSocketNetwork.connect`) that run trionet's own
  client side of the protocol, and the same fault injection.
"""

from ._harness import ConnectionPair as ConnectionPair
from ._harness import EventRecorder as EventRecorder
from ._harness import MemoryNetwork as MemoryNetwork
from ._harness import open_connection_pair as open_connection_pair
from ._harness import open_memory_listener as open_memory_listener
from ._memory import MemoryTCPStream as MemoryTCPStream
from ._memory import memory_stream_pair as memory_stream_pair
from ._wsmemory import MemoryWebSocket as MemoryWebSocket
from ._wsmemory import MemoryWebSocketNetwork as MemoryWebSocketNetwork
from ._wsmemory import open_memory_websocket_server as open_memory_websocket_server

__all__ = [
    "ConnectionPair",
    "EventRecorder",
    "MemoryNetwork",
    "MemoryTCPStream",
    "MemoryWebSocket",
    "MemoryWebSocketNetwork",
    "memory_stream_pair",
    "open_connection_pair",
    "open_memory_listener",
    "open_memory_websocket_server",
]
