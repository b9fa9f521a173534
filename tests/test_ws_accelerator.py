"""The fast paths of the frame layer give exactly wsproto's results, and touch nobody else.

* Unmasking with the optional C routine (websockets' speedups) against wsproto's own
  masker, over random payloads cut at random places.
* Server data frames built by trionet against the frames wsproto builds.
* Another wsproto connection in the same process keeps wsproto's masker.
* The plain-path shortcut of the request parser against urlsplit, unquote and parse_qsl.
* A client's lone close frame, answered without wsproto's parser, against wsproto's
  outcome for every kind of close frame (valid or not) and whatever surrounds it.
"""

from __future__ import annotations

from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wsproto.connection import Connection, ConnectionType
from wsproto.events import BytesMessage, TextMessage
from wsproto.frame_protocol import FrameDecoder, XorMaskerSimple

import trionet._wsproto as wsproto_layer
from trionet._wshandshake import (
    ClientHandshake,
    HandshakeLimits,
    HeadReader,
    ServerHandshake,
    parse_request,
)
from trionet._wsproto import ACCELERATED, CLOSED, MESSAGE, FrameLayer

LIMITS = HandshakeLimits()


def pair(*, accelerate: bool) -> tuple[FrameLayer, FrameLayer]:
    """A server and a client frame layer, connected by a real handshake."""
    client = ClientHandshake(
        "127.0.0.1", "/", subprotocols=(), extensions=[], headers=(), limits=LIMITS
    )
    done = HeadReader(LIMITS).feed(client.request_bytes)
    assert done is not None
    request, _raw = parse_request(done[0], LIMITS, ("127.0.0.1", 1))
    response, server_conn = ServerHandshake(request, done[0]).accept(None, [])
    opened = client.feed(response)
    assert opened is not None
    server = FrameLayer(
        server_conn, data_type="text", max_message_size=1 << 22, accelerate=accelerate
    )
    return server, FrameLayer(opened[0], data_type="text", max_message_size=1 << 22)


def received(server: FrameLayer, data: bytes, cuts: list[int]) -> list[object]:
    out: list[object] = []
    start = 0
    for cut in [*sorted(set(cuts)), len(data)]:
        if cut > start:
            out += [item[1] for item in server.feed(data[start:cut]) if item[0] == MESSAGE]
            start = cut
    return out


@pytest.mark.skipif(not ACCELERATED, reason="websockets' C speedups are not installed")
@settings(max_examples=60, deadline=None)
@given(
    messages=st.lists(st.one_of(st.binary(max_size=3000), st.text(max_size=500)), max_size=5),
    cuts=st.lists(st.integers(min_value=0, max_value=20000), max_size=12),
)
def test_c_unmasking_equals_wsprotos(messages: list[bytes | str], cuts: list[int]) -> None:
    fast, fast_client = pair(accelerate=True)
    slow, slow_client = pair(accelerate=False)
    wire_fast = b"".join(fast_client.message(m) for m in messages)
    wire_slow = b"".join(slow_client.message(m) for m in messages)
    assert received(fast, wire_fast, cuts) == messages
    assert received(slow, wire_slow, cuts) == messages


@settings(max_examples=60, deadline=None)
@given(message=st.one_of(st.binary(max_size=70000), st.text(max_size=300)))
def test_server_frames_are_wsprotos_frames(message: bytes | str) -> None:
    server, _client = pair(accelerate=True)
    reference = Connection(ConnectionType.SERVER)
    event = TextMessage(data=message) if isinstance(message, str) else BytesMessage(data=message)
    assert server.message(message) == reference.send(event)


def test_other_wsproto_users_keep_wsprotos_masker() -> None:
    server, client = pair(accelerate=True)
    assert received(server, client.message(b"x" * 10), []) == [b"x" * 10]
    other = Connection(ConnectionType.SERVER)
    decoder = other._proto._frame_decoder
    assert type(decoder) is FrameDecoder
    masked = FrameLayer(
        Connection(ConnectionType.CLIENT), data_type="blob", max_message_size=100
    ).message(b"hello")
    other.receive_data(masked)
    assert [e.data for e in other.events()] == [b"hello"]
    assert type(other._proto._frame_decoder) is FrameDecoder
    assert type(decoder.masker) in (XorMaskerSimple, type(None))


@settings(max_examples=300, deadline=None)
@given(
    target=st.text(st.sampled_from("/abcXYZ09-._~!$&'()*+,;=:@%?#"), min_size=1, max_size=24).map(
        lambda t: "/" + t
    )
)
def test_plain_path_fast_path_matches_urlsplit(target: str) -> None:
    # parse_request skips urlsplit/unquote/parse_qsl for a plain path: the same result.
    from urllib.parse import parse_qsl, unquote, urlsplit

    head = f"GET {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode("ascii")
    request, _raw = parse_request(head, LIMITS, ("127.0.0.1", 1))
    split = urlsplit(target)
    assert request.path == (unquote(split.path) or "/")
    expected: dict[str, object] = {}
    for name, value in parse_qsl(split.query, keep_blank_values=True):
        previous = expected.get(name)
        if previous is None:
            expected[name] = value
        elif isinstance(previous, list):
            previous.append(value)
        else:
            expected[name] = [previous, value]
    assert request.query == expected


def _masked(payload: bytes, key: bytes, *, first: int = 0x88, size: int | None = None) -> bytes:
    """A client frame: ``first`` (FIN, RSV, opcode), the mask bit and length, key, payload."""
    body = bytes(byte ^ key[i % 4] for i, byte in enumerate(payload))
    return bytes((first, 0x80 | (len(payload) if size is None else size))) + key + body


def _close_chunks(shape: str, payload: bytes, key: bytes) -> list[bytes]:
    """How a close frame (and what comes around it) arrives, by ``shape``."""
    close = _masked(payload, key)
    message = _masked(b"hi", key, first=0x81)
    return {
        "whole": [close],
        "split": [close[:3], close[3:]],
        "after a message": [message, close],
        "with a message": [message + close],
        "after half a frame": [message[:4], message[4:] + close],
        "between fragments": [_masked(b"a", key, first=0x01), close],
        "no FIN": [_masked(payload, key, first=0x08)],
        "RSV bit": [_masked(payload, key, first=0xC8)],
        "unmasked": [bytes((0x88, len(payload))) + payload],
        "short length": [_masked(payload, key, size=max(len(payload) - 1, 0))],
        "trailing byte": [close + b"\x00"],
    }[shape]


def _outcome(layer: FrameLayer, chunks: list[bytes]) -> tuple[object, ...]:
    items: list[object] = []
    for chunk in chunks:
        items += layer.feed(chunk)
    return items, bytes(layer.outgoing), layer.closed, layer.can_send


@settings(max_examples=400, deadline=None)
@given(
    code=st.one_of(
        st.sampled_from([1000, 1001, 1002, 1004, 1005, 1006, 1011, 1015, 2999, 3000, 4999, 5000]),
        st.integers(min_value=0, max_value=65535),
    ),
    reason=st.one_of(st.text(max_size=40).map(str.encode), st.binary(max_size=40)),
    empty=st.booleans(),
    key=st.binary(min_size=4, max_size=4),
    shape=st.sampled_from(
        [
            "whole",
            "split",
            "after a message",
            "with a message",
            "after half a frame",
            "between fragments",
            "no FIN",
            "RSV bit",
            "unmasked",
            "short length",
            "trailing byte",
        ]
    ),
    compiled=st.booleans(),
)
def test_peer_close_fast_path_equals_wsprotos(
    code: int, reason: bytes, empty: bool, key: bytes, shape: str, compiled: bool
) -> None:
    # FrameLayer answers a lone valid close frame itself; whatever the frame and whatever
    # surrounds it, the outcome is wsproto's: items, the answer, the state after.
    payload = b"" if empty else (code.to_bytes(2, "big") + reason)[:125]
    chunks = _close_chunks(shape, payload, key)
    reference, _ = pair(accelerate=False)
    expected = _outcome(reference, chunks)
    if compiled:
        fast, _ = pair(accelerate=True)
        assert _outcome(fast, chunks) == expected
    else:  # as without websockets' speedups: unmasked in Python
        with (
            mock.patch.object(wsproto_layer, "_apply_mask", None),
            mock.patch.object(wsproto_layer, "ACCELERATED", False),
        ):
            fast, _ = pair(accelerate=True)
            assert _outcome(fast, chunks) == expected


def test_peer_close_fast_path_is_taken_for_a_lone_close_frame() -> None:
    fast, _ = pair(accelerate=True)

    def not_called(data: bytes) -> None:
        raise AssertionError("wsproto parsed the close frame")

    fast._conn.receive_data = not_called  # type: ignore[method-assign]
    items = fast.feed(_masked(b"\x03\xe8bye", b"\x01\x02\x03\x04"))
    assert items == [(CLOSED, 1000, "bye")]
    assert bytes(fast.outgoing) == b"\x88\x05\x03\xe8bye"
    assert fast.closed
    assert fast.feed(b"anything after") == []
