"""The fast read path (``trionet._wsfast``) gives exactly wsproto's outcome, for any input.

``FrameLayer`` reads whole plain data frames and a lone close frame itself, and leaves
everything else to wsproto.  Here a layer with the fast path and one without
(``accelerate=False``: every byte through wsproto) are fed the same bytes, cut at the same
places, and must agree on every message, failure and close, on what they answer, and on
the state they end in.  The inputs mix valid frames with every kind of wrong one.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

from hypothesis import given, settings
from hypothesis import strategies as st

import trionet._wsfast as wsfast
from trionet._wsfast import peer_close, split_frames, unmask
from trionet._wsproto import CLOSED, FAILED, MESSAGE, FrameLayer

from .wshelpers import frame_layers

KEY = b"\x11\x22\x33\x44"


def masked(payload: bytes, key: bytes = KEY, *, first: int = 0x81) -> bytes:
    """A client frame: ``first`` (FIN, RSV, opcode), mask bit + length, key, payload."""
    body = bytes(byte ^ key[i % 4] for i, byte in enumerate(payload))
    size = len(payload)
    if size < 126:
        head = bytes((first, 0x80 | size))
    elif size < 65536:
        head = bytes((first, 0x80 | 126)) + size.to_bytes(2, "big")
    else:
        head = bytes((first, 0x80 | 127)) + size.to_bytes(8, "big")
    return head + key + body


def close_payload(code: int, reason: bytes) -> bytes:
    return (code.to_bytes(2, "big") + reason)[:125]


# One frame of the input, as (kind, payload); built by frame_bytes.
_frames = st.one_of(
    st.tuples(st.just("text"), st.text(max_size=200).map(str.encode)),
    st.tuples(st.just("text"), st.binary(max_size=40)),  # often invalid UTF-8
    st.tuples(st.just("binary"), st.binary(max_size=300)),
    st.tuples(st.just("binary16"), st.integers(min_value=126, max_value=70000)),
    st.tuples(st.just("fragments"), st.binary(max_size=60)),
    st.tuples(
        st.sampled_from(["ping", "pong", "unmasked", "rsv", "opcode", "short16"]),
        st.binary(max_size=20),
    ),
    st.tuples(
        st.just("close"),
        st.one_of(
            st.just(b""),
            st.tuples(
                st.sampled_from([1000, 1001, 1005, 1006, 1011, 2999, 3000, 4999, 5000, 1]),
                st.binary(max_size=30),
            ).map(lambda pair: close_payload(*pair)),
        ),
    ),
)


def frame_bytes(kind: str, payload: Any) -> bytes:
    if kind == "text":
        return masked(payload, first=0x81)
    if kind == "binary":
        return masked(payload, first=0x82)
    if kind == "binary16":
        return masked(bytes(i % 251 for i in range(payload)), first=0x82)
    if kind == "fragments":
        half = len(payload) // 2
        return masked(payload[:half], first=0x02) + masked(payload[half:], first=0x80)
    if kind == "ping":
        return masked(payload, first=0x89)
    if kind == "pong":
        return masked(payload, first=0x8A)
    if kind == "unmasked":
        return bytes((0x81, len(payload))) + bytes(payload)
    if kind == "rsv":
        return masked(payload, first=0xC1)
    if kind == "opcode":
        return masked(payload, first=0x83)
    if kind == "short16":  # a 16-bit length for a short payload: not allowed
        body = masked(payload)[2:]
        return bytes((0x82, 0x80 | 126)) + len(payload).to_bytes(2, "big") + body
    assert kind == "close"
    return masked(payload, first=0x88)


def outcome(layer: FrameLayer, data: bytes, cuts: list[int]) -> tuple[Any, ...]:
    """Feed ``data`` cut at ``cuts`` until a close or failure, as a connection reads."""
    items: list[Any] = []
    start = 0
    for cut in [*sorted(set(cuts)), len(data)]:
        if cut <= start:
            continue
        items += layer.feed(data[start:cut])
        start = cut
        if any(item[0] in (CLOSED, FAILED) for item in items):
            break
    return items, bytes(layer.outgoing), layer.closed, layer.can_send


@contextmanager
def python_unmasking(enabled: bool) -> Iterator[None]:
    """As in a process without websockets' speedups: unmasking in Python."""
    if not enabled:
        yield
        return
    with (
        mock.patch.object(wsfast, "_apply_mask", None),
        mock.patch("trionet._wsproto.ACCELERATED", False),
    ):
        yield


@settings(max_examples=500, deadline=None)
@given(
    frames=st.lists(_frames, max_size=8),
    cuts=st.lists(st.integers(min_value=0, max_value=72000), max_size=6),
    data_type=st.sampled_from(["text", "blob", "object"]),
    max_message_size=st.sampled_from([1 << 22, 100, 1000]),
    pure_python=st.booleans(),
)
def test_same_outcome_as_wsproto(
    frames: list[tuple[str, Any]],
    cuts: list[int],
    data_type: str,
    max_message_size: int,
    pure_python: bool,
) -> None:
    data = b"".join(frame_bytes(kind, payload) for kind, payload in frames)
    options: dict[str, Any] = {
        "data_type": data_type,
        "max_message_size": max_message_size,
        "max_fragments": 1000,  # wsproto's path counts pieces of frames, not frames
    }
    reference, _ = frame_layers(accelerate=False, **options)
    expected = outcome(reference, data, cuts)
    with python_unmasking(pure_python):
        fast, _ = frame_layers(accelerate=True, **options)
        assert outcome(fast, data, cuts) == expected


def test_plain_frames_do_not_reach_wsproto() -> None:
    fast, _ = frame_layers(accelerate=True)

    def not_called(data: bytes | None) -> None:
        raise AssertionError("wsproto parsed a plain frame")

    fast._conn.receive_data = not_called  # type: ignore[method-assign]
    wire = masked(b"hello") + masked(b"\x00\x01", first=0x82) + masked(b"x" * 300)
    wire += masked(close_payload(1000, b"bye"), first=0x88)
    items = fast.feed(wire[:5]) + fast.feed(wire[5:200]) + fast.feed(wire[200:])
    assert items == [
        (MESSAGE, "hello", 5),
        (MESSAGE, b"\x00\x01", 2),
        (MESSAGE, "x" * 300, 300),
        (CLOSED, 1000, "bye"),
    ]
    assert bytes(fast.outgoing) == b"\x88\x05\x03\xe8bye"
    assert fast.closed
    assert fast.feed(b"anything after") == []


def test_what_comes_after_an_unusual_frame_goes_to_wsproto() -> None:
    fast, _ = frame_layers(accelerate=True)
    wire = masked(b"a") + masked(b"ping", first=0x89) + masked(b"b")
    assert fast.feed(wire) == [(MESSAGE, "a", 1), (MESSAGE, "b", 1)]
    assert bytes(fast.outgoing) == b"\x8a\x04ping"  # wsproto answered the ping


def test_split_frames_stops_where_it_must() -> None:
    whole = masked(b"abc")
    frames, used, partial = split_frames(whole + whole[:4])
    assert [(first, start) for first, start, _ in frames] == [(0x81, 0)]
    assert (used, partial) == (len(whole), True)
    frames, used, partial = split_frames(whole + masked(b"p", first=0x89))
    assert (len(frames), used, partial) == (1, len(whole), False)
    long = masked(b"z" * 70000, first=0x82)  # 64-bit length: wsproto's
    assert split_frames(long) == ([], 0, False)
    frames, used, partial = split_frames(masked(b"q" * 200, first=0x82))
    assert frames[0][2] == b"q" * 200
    assert not partial


def test_peer_close_takes_only_valid_lone_close_frames() -> None:
    assert peer_close(masked(close_payload(1000, b"ok"), first=0x88)) == (
        1000,
        "ok",
        close_payload(1000, b"ok"),
    )
    assert peer_close(masked(b"", first=0x88)) == (1005, "", b"")
    for payload in (b"\x03", close_payload(1005, b""), close_payload(2999, b""), b"\x03\xe8\xff"):
        assert peer_close(masked(payload, first=0x88)) is None
    assert peer_close(masked(b"", first=0x88) + b"\x00") is None
    assert peer_close(bytes((0x88, 0x00))) is None  # unmasked


def test_python_unmasking_equals_the_c_routine() -> None:
    payloads = [b"", b"a", b"abcd", b"abcde", bytes(range(256)) * 300]
    compiled = [unmask(payload, KEY) for payload in payloads]
    with python_unmasking(True):
        assert [unmask(payload, KEY) for payload in payloads] == compiled
    assert compiled[2] == bytes(a ^ b for a, b in zip(b"abcd", KEY, strict=True))
