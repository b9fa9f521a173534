"""A Sphinx directive that draws a lifecycle transition table from the code.

``.. lifecycle-table::`` imports a transition table at build time (by default the TCP one,
:data:`trionet._state.TRANSITIONS`) and emits one row per ``(state, input)`` pair: the
state, the input, the next state and the event types delivered, in order.  The docs
therefore show the table the connections really run, and cannot drift from it.

Options:
    ``:table: MODULE.ATTRIBUTE`` names the table to draw, e.g.
    ``:table: trionet._wsstate.WS_TRANSITIONS``; the default is
    ``trionet._state.TRANSITIONS``.  Its keys are ``(state, input)`` pairs of enums.
    ``:state: NAME`` (repeatable as a comma-separated list) keeps only the rows of those
    states, e.g. ``:state: open, read-closed``.
    ``:sendable:`` adds a sentence naming the states in which ``send()`` accepts data
    (:data:`trionet._state.SENDABLE`; TCP table only).
"""

from __future__ import annotations

import importlib
from typing import Any, ClassVar

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective


def _state_list(argument: str | None) -> list[str]:
    if not argument:
        return []
    return [part.strip() for part in argument.split(",") if part.strip()]


def _literal(text: str) -> nodes.Node:
    return nodes.literal(text, text)


def _cell(*children: nodes.Node) -> nodes.entry:
    paragraph = nodes.paragraph()
    paragraph.extend(children)
    entry = nodes.entry()
    entry += paragraph
    return entry


def _events_cell(event_types: tuple[Any, ...]) -> nodes.entry:
    if not event_types:
        return _cell(nodes.emphasis("none", "none"))
    parts: list[nodes.Node] = []
    for index, event_type in enumerate(event_types):
        if index:
            parts.append(nodes.Text(", "))
        parts.append(_literal(str(event_type.value)))
    return _cell(*parts)


class LifecycleTable(SphinxDirective):
    """Render a transition table (``trionet._state.TRANSITIONS`` unless ``:table:``)."""

    has_content = False
    option_spec: ClassVar[dict[str, Any]] = {
        "table": directives.unchanged,
        "state": directives.unchanged,
        "sendable": directives.flag,
    }

    def run(self) -> list[nodes.Node]:
        """Build the table node (and the optional sentence about ``send()``)."""
        from trionet import _state

        where = self.options.get("table", "trionet._state.TRANSITIONS").strip()
        module_name, _, attribute = where.rpartition(".")
        try:
            module = importlib.import_module(module_name)
            transitions = getattr(module, attribute)
        except (ImportError, AttributeError, ValueError) as exc:
            raise self.error(f"cannot import the lifecycle table {where!r}: {exc}") from exc
        if "sendable" in self.options and transitions is not _state.TRANSITIONS:
            raise self.error(":sendable: applies to the TCP table only")

        wanted = _state_list(self.options.get("state"))
        known = {state.value for state, _input in transitions}
        known |= {next_state.value for next_state, _events in transitions.values()}
        unknown = [name for name in wanted if name not in known]
        if unknown:
            raise self.error(
                f"unknown state(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        self.env.note_dependency(module.__file__)

        headers = ("State", "Input", "Next state", "Events delivered, in order")
        table = nodes.table(classes=["lifecycle-table"])
        group = nodes.tgroup(cols=len(headers))
        table += group
        for width in (20, 18, 20, 42):
            group += nodes.colspec(colwidth=width)
        head = nodes.thead()
        group += head
        row = nodes.row()
        for header in headers:
            row += _cell(nodes.Text(header))
        head += row
        body = nodes.tbody()
        group += body
        count = 0
        for (state, what), (next_state, event_types) in transitions.items():
            if wanted and state.value not in wanted:
                continue
            row = nodes.row()
            row += _cell(_literal(state.value))
            row += _cell(_literal(what.value))
            row += _cell(_literal(next_state.value))
            row += _events_cell(event_types)
            body += row
            count += 1
        if not count:
            raise self.error("the lifecycle table has no row for the requested states")

        result: list[nodes.Node] = [table]
        if "sendable" in self.options:
            ordered = [state for state in _state.State if state in _state.SENDABLE]
            paragraph = nodes.paragraph()
            paragraph += nodes.Text("send() accepts data in the states ")
            for index, state in enumerate(ordered):
                if index:
                    paragraph += nodes.Text(" and " if index == len(ordered) - 1 else ", ")
                paragraph += _literal(state.value)
            paragraph += nodes.Text(
                "; in any other state it raises ConnectionClosedError without sending."
            )
            result.append(paragraph)
        return result


def setup(app: Sphinx) -> dict[str, Any]:
    """Register the ``lifecycle-table`` directive."""
    app.add_directive("lifecycle-table", LifecycleTable)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
