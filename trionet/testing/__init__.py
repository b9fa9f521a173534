"""Test doubles for code that uses trionet: no sockets, deterministic, with faults.

* :func:`memory_stream_pair` and :class:`MemoryTCPStream`: TCP-shaped memory streams with
  bounded buffers, half-close, reset, silent drop, stalled reader, delays and fragmentation.
* :func:`open_connection_pair`: two real :class:`~trionet.TCPConnection` objects over them.
* :func:`open_memory_listener`: a real :class:`~trionet.TCPListener` accepting them.
* :class:`EventRecorder`: a handler that records events for assertions.
"""

from ._harness import ConnectionPair as ConnectionPair
from ._harness import EventRecorder as EventRecorder
from ._harness import MemoryNetwork as MemoryNetwork
from ._harness import open_connection_pair as open_connection_pair
from ._harness import open_memory_listener as open_memory_listener
from ._memory import MemoryTCPStream as MemoryTCPStream
from ._memory import memory_stream_pair as memory_stream_pair

__all__ = [
    "ConnectionPair",
    "EventRecorder",
    "MemoryNetwork",
    "MemoryTCPStream",
    "memory_stream_pair",
    "open_connection_pair",
    "open_memory_listener",
]
