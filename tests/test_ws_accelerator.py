"""The fast paths of the frame layer give exactly wsproto's results, and touch nobody else.

* Unmasking with the optional C routine (websockets' speedups) against wsproto's own
  masker, over random payloads cut at random places.
* Server data frames built by trionet against the frames wsproto builds.
* Another wsproto connection in the same process keeps wsproto's masker.
* The plain-path shortcut of the request parser against urlsplit, unquote and parse_qsl.

The fast read path (frames parsed without wsproto) has its own file, test_ws_fastpath.py.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wsproto.connection import Connection, ConnectionType
from wsproto.events import BytesMessage, TextMessage
from wsproto.frame_protocol import FrameDecoder, XorMaskerSimple

from trionet._wsfast import ACCELERATED
from trionet._wshandshake import (
    HandshakeLimits,
    parse_request,
)
from trionet._wsproto import MESSAGE, FrameLayer

from .wshelpers import frame_layers

LIMITS = HandshakeLimits()


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
    fast, fast_client = frame_layers(accelerate=True)
    slow, slow_client = frame_layers(accelerate=False)
    wire_fast = b"".join(fast_client.message(m) for m in messages)
    wire_slow = b"".join(slow_client.message(m) for m in messages)
    assert received(fast, wire_fast, cuts) == messages
    assert received(slow, wire_slow, cuts) == messages


@settings(max_examples=60, deadline=None)
@given(message=st.one_of(st.binary(max_size=70000), st.text(max_size=300)))
def test_server_frames_are_wsprotos_frames(message: bytes | str) -> None:
    server, _client = frame_layers(accelerate=True)
    reference = Connection(ConnectionType.SERVER)
    event = TextMessage(data=message) if isinstance(message, str) else BytesMessage(data=message)
    assert server.message(message) == reference.send(event)


def test_other_wsproto_users_keep_wsprotos_masker() -> None:
    server, client = frame_layers(accelerate=True)
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
