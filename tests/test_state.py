"""The sans-I/O lifecycle: the transition table alone decides the event sequence.

The I/O layer feeds :class:`~trionet._state.Input` values and delivers what
:class:`~trionet._state.Lifecycle` returns.  These tests check the table itself: whatever
inputs arrive, in whatever order, the events form

    connection · data* · (close | error) · terminate        (or  error · terminate)

with exactly one ``terminate``, last; illegal inputs raise; and every state can end.
"""

from __future__ import annotations

import itertools
import re
import subprocess
import sys
import textwrap
from collections import deque
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trionet import LocalProtocolError, TCPEventType
from trionet._state import SENDABLE, TRANSITIONS, Input, Lifecycle, State

PACKAGE_DIR = Path(__file__).resolve().parent.parent / "trionet"

_LETTER = {
    TCPEventType.CONNECTION: "C",
    TCPEventType.DATA: "D",
    TCPEventType.CLOSE: "L",
    TCPEventType.ERROR: "E",
    TCPEventType.TERMINATE: "T",
}
_GRAMMAR = re.compile(r"CD*[LE]T|ET")
_PREFIX = re.compile(r"(CD*([LE]T?)?|ET?)?")

ILLEGAL = [
    (state, what)
    for state, what in itertools.product(State, Input)
    if (state, what) not in TRANSITIONS
]


def word(events: list[TCPEventType]) -> str:
    return "".join(_LETTER[e] for e in events)


def wind_down(lifecycle: Lifecycle) -> list[TCPEventType]:
    """Feed what the I/O layer feeds when a connection's scope ends, whatever its state."""
    events: list[TCPEventType] = []
    if lifecycle.state is State.TERMINATED:
        return events
    if lifecycle.allows(Input.CLOSE):
        events += lifecycle.handle(Input.CLOSE)
    if lifecycle.state is State.CLOSING:
        events += lifecycle.handle(Input.FINISHED)
    if lifecycle.state is not State.CLOSED:
        events += lifecycle.handle(Input.FAIL)
    events += lifecycle.handle(Input.RELEASE)
    return events


# -- (a) no trio ------------------------------------------------------------------------


def _run_without_trio(code: str) -> subprocess.CompletedProcess[str]:
    prelude = "import sys\nsys.modules['trio'] = None  # any 'import trio' now fails\n"
    return subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_state_and_events_modules_need_no_trio() -> None:
    """_state, _events and _exceptions import and work with trio unavailable.

    The package's ``__init__`` imports the I/O classes (and so trio), so the modules are
    loaded here under a bare ``trionet`` package object that skips it: what is checked is
    the modules' own imports.
    """
    result = _run_without_trio(
        f"""
        import types
        package = types.ModuleType("trionet")
        package.__path__ = [{str(PACKAGE_DIR)!r}]
        sys.modules["trionet"] = package
        from trionet._events import TCPEvent, TCPEventType, ErrorRecord, ErrorCode
        from trionet._exceptions import LocalProtocolError
        from trionet._state import Input, Lifecycle, State
        lc = Lifecycle()
        assert lc.handle(Input.CONNECTED) == (TCPEventType.CONNECTION,)
        event = TCPEvent(type=TCPEventType.DATA, data=b"x", ip="127.0.0.1", port=1)
        assert event.type == "data"
        assert sorted(m for m in sys.modules if m == "trio" or m.startswith("trio.")) == ["trio"]
        assert sys.modules["trio"] is None
        print("ok")
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_blocking_trio_really_blocks_it() -> None:
    """The subprocess trick works: a module that does import trio fails."""
    result = _run_without_trio("import trionet")
    assert result.returncode != 0
    assert "trio" in result.stderr


# -- (b) any input sequence gives the grammar -------------------------------------------


@settings(max_examples=1500, deadline=None)
@given(st.lists(st.sampled_from(Input), max_size=40))
def test_any_input_sequence_gives_the_event_grammar(inputs: list[Input]) -> None:
    lifecycle = Lifecycle()
    events: list[TCPEventType] = []
    for what in inputs:
        if not lifecycle.allows(what):
            before = lifecycle.state
            with pytest.raises(LocalProtocolError):
                lifecycle.handle(what)
            assert lifecycle.state is before  # a refused input changes nothing
            continue
        emitted = lifecycle.handle(what)
        # Only DATA ever yields a data event, and never more than one per input.
        assert (TCPEventType.DATA in emitted) <= (what is Input.DATA)
        assert len(emitted) <= 1
        events += emitted
        # At every step, what was delivered is a prefix of a valid sequence.
        assert _PREFIX.fullmatch(word(events)), (inputs, events)
        assert lifecycle.can_send == (lifecycle.state in SENDABLE)
        assert lifecycle.ended == (lifecycle.state in (State.CLOSED, State.TERMINATED))
    events += wind_down(lifecycle)
    assert lifecycle.state is State.TERMINATED
    assert _GRAMMAR.fullmatch(word(events)), (inputs, events)
    assert events.count(TCPEventType.TERMINATE) == 1
    assert events[-1] is TCPEventType.TERMINATE


def test_every_path_through_the_table_gives_the_grammar() -> None:
    """Exhaustive: walk (lifecycle state x grammar position) over every legal input.

    The grammar as an automaton: ``start`` -C-> ``open`` -D-> ``open`` -L/E-> ``ended``
    -T-> ``done``, and ``start`` -E-> ``ended``.  No reachable step may leave it, and
    ``done`` coincides with TERMINATED.  This covers input sequences of any length.
    """
    grammar = {
        ("start", TCPEventType.CONNECTION): "open",
        ("start", TCPEventType.ERROR): "ended",
        ("open", TCPEventType.DATA): "open",
        ("open", TCPEventType.CLOSE): "ended",
        ("open", TCPEventType.ERROR): "ended",
        ("ended", TCPEventType.TERMINATE): "done",
    }
    start = (State.CONNECTING, "start")
    seen = {start}
    todo = deque([start])
    while todo:
        state, position = todo.popleft()
        assert (position == "done") == (state is State.TERMINATED)
        for what in Input:
            lifecycle = Lifecycle(state)
            if not lifecycle.allows(what):
                continue
            here = position
            for event in lifecycle.handle(what):
                assert (here, event) in grammar, f"{state} --{what}--> emits {event} at {here}"
                here = grammar[here, event]
            node = (lifecycle.state, here)
            if node not in seen:
                seen.add(node)
                todo.append(node)
    # Every state is used; from CONNECTING every table entry's source state is reachable.
    assert {state for state, _ in seen} == set(State)


@pytest.mark.parametrize(
    ("inputs", "expected"),
    [
        ([Input.CONNECTED, Input.DATA, Input.DATA, Input.PEER_EOF], "CDDLT"),
        ([Input.CONNECTED, Input.DATA, Input.FAIL], "CDET"),
        ([Input.FAIL], "ET"),
        ([Input.CLOSE], "ET"),  # terminated before the connect finished
        ([Input.CONNECTED, Input.SHUTDOWN, Input.DATA, Input.PEER_EOF], "CDLT"),
        ([Input.CONNECTED, Input.PEER_EOF, Input.FAIL], "CLT"),  # a late failure: recorded
        ([Input.CONNECTED, Input.CLOSE, Input.DATA, Input.PEER_EOF], "CLT"),  # drained
        ([Input.CONNECTED, Input.SHUTDOWN, Input.FAIL], "CET"),
        ([Input.CONNECTED], "CLT"),  # the scope ends: an orderly close
    ],
)
def test_typical_lives(inputs: list[Input], expected: str) -> None:
    lifecycle = Lifecycle()
    events: list[TCPEventType] = []
    for what in inputs:
        events += lifecycle.handle(what)
    events += wind_down(lifecycle)
    assert word(events) == expected


# -- (c) illegal inputs raise -----------------------------------------------------------


def test_there_are_illegal_inputs() -> None:
    assert ILLEGAL  # the table is not total: the checks below are not vacuous
    assert all((State.TERMINATED, what) in ILLEGAL for what in Input)


@pytest.mark.parametrize(
    ("state", "what"), ILLEGAL, ids=[f"{s.value}-{w.value}" for s, w in ILLEGAL]
)
def test_illegal_input_raises_local_protocol_error(state: State, what: Input) -> None:
    lifecycle = Lifecycle(state)
    assert not lifecycle.allows(what)
    with pytest.raises(LocalProtocolError) as info:
        lifecycle.handle(what)
    assert lifecycle.state is state
    # The message says what was fed and in which state.
    assert what.value in str(info.value)
    assert state.value in str(info.value)


@pytest.mark.parametrize(("state", "what"), sorted(TRANSITIONS, key=str))
def test_legal_input_is_allowed(state: State, what: Input) -> None:
    lifecycle = Lifecycle(state)
    assert lifecycle.allows(what)
    next_state, events = TRANSITIONS[state, what]
    assert lifecycle.handle(what) == events
    assert lifecycle.state is next_state


# -- (d) every state can end -------------------------------------------------------------


def _reachable(source: State) -> set[State]:
    seen = {source}
    todo = [source]
    while todo:
        state = todo.pop()
        for (origin, _what), (target, _events) in TRANSITIONS.items():
            if origin is state and target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


@pytest.mark.parametrize("state", [s for s in State if s is not State.TERMINATED])
def test_closed_is_reachable_from_every_live_state(state: State) -> None:
    assert State.CLOSED in _reachable(state)
    assert State.TERMINATED in _reachable(state)
    # The I/O layer's way out from anywhere: FAIL goes straight to CLOSED ...
    lifecycle = Lifecycle(state)
    lifecycle.handle(Input.FAIL)
    assert lifecycle.state is State.CLOSED
    # ... and the wind-down reaches it too, without FAIL when the state allows.
    lifecycle = Lifecycle(state)
    wind_down(lifecycle)
    assert lifecycle.state is State.TERMINATED


def test_terminated_is_final_and_only_closed_releases() -> None:
    assert _reachable(State.TERMINATED) == {State.TERMINATED}
    releasing = {origin for (origin, what) in TRANSITIONS if what is Input.RELEASE}
    assert releasing == {State.CLOSED}
    # terminate is emitted by RELEASE and by nothing else.
    for (_state, what), (_target, events) in TRANSITIONS.items():
        assert (TCPEventType.TERMINATE in events) == (what is Input.RELEASE)


def test_sendable_states() -> None:
    assert {s for s in State if Lifecycle(s).can_send} == {
        State.CONNECTING,
        State.OPEN,
        State.READ_CLOSED,
    }
