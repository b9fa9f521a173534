"""The public surface: exports, docstrings, typing marker, exception tree."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

import trionet
import trionet.testing

EXPECTED = {
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
    # Godot
    "Error",
    "StreamPeer",
    "StreamPeerTCP",
    "TCPServer",
    "bytes_to_var",
    "var_to_bytes",
    "AABB",
    "Basis",
    "Color",
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
    "StringName",
    "Transform2D",
    "Transform3D",
    "Vector2",
    "Vector2i",
    "Vector3",
    "Vector3i",
    "Vector4",
    "Vector4i",
    "CloseCode",
    "HandshakeLimits",
    "WebSocket",
    "WebSocketConnection",
    "WebSocketEvent",
    "WebSocketEventType",
    "WebSocketOptions",
    "WebSocketRequest",
    "WebSocketServer",
}


def test_exports_are_exactly_the_public_names() -> None:
    assert set(trionet.__all__) == EXPECTED
    for name in trionet.__all__:
        assert hasattr(trionet, name)


@pytest.mark.parametrize("module", [trionet, trionet.testing])
def test_every_public_name_has_a_docstring(module: object) -> None:
    for name in module.__all__:  # type: ignore[attr-defined]
        if name.startswith("__"):
            continue
        obj = getattr(module, name)
        assert inspect.getdoc(obj), f"{name} has no docstring"
        if inspect.isclass(obj):
            for attr, member in vars(obj).items():
                public = not attr.startswith("_")
                if public and (callable(member) or isinstance(member, property)):
                    assert inspect.getdoc(member), f"{name}.{attr} has no docstring"


def test_package_is_typed() -> None:
    assert (Path(trionet.__file__).parent / "py.typed").exists()


def test_exception_tree() -> None:
    assert issubclass(trionet.LocalProtocolError, trionet.TrionetError)
    assert issubclass(trionet.RemoteProtocolError, trionet.TrionetError)
    assert issubclass(trionet.ConnectionClosedError, trionet.LocalProtocolError)
    assert issubclass(trionet.ListenError, trionet.TrionetError)
    assert issubclass(trionet.ListenError, OSError)


def test_event_type_is_a_str_enum() -> None:
    assert trionet.TCPEventType.DATA == "data"
    assert {t.value for t in trionet.TCPEventType} == {
        "connection",
        "data",
        "error",
        "close",
        "terminate",
    }
