"""ENG-1: two parallel regions' transitions on one event may not declare writes
to the same top-level data key (`Rules.action(..., writes=...)`), and a
chart's upgrade must name a registered data migration (`Rules.upgrade`)."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from engine import ChartLoadError, ChartProblem, Rules, StepContext, load_chart

ORDER = """
name: order
entity_kind: order
version: 2
parallel: true
states:
  lifecycle:
    label: Lifecycle
    initial: open
    states:
      open: {label: Open}
      paid: {label: Paid}
  sync:
    label: Sync
    initial: idle
    states:
      idle: {label: Idle}
      pushing:
        label: Pushing
        parallel: true
        states:
          items: {label: Items, initial: sending, states: {sending: {label: Sending}}}
          notes: {label: Notes, initial: quiet, states: {quiet: {label: Quiet}}}
events: [order.paid, order.noted]
transitions:
  - event: order.paid
    source: lifecycle.open
    target: lifecycle.paid
    actions: [record_payment]
  - event: order.paid
    source: sync.idle
    target: sync.pushing
    actions: [start_push]
  - event: order.noted
    source: sync.pushing.items
    actions: [note_items]
  - event: order.noted
    source: sync.pushing.notes
    actions: [note_text]
upgrades:
  - from_version: 1
    data: split_sync
"""

rules = Rules()
rules.register_events({"order.paid": None, "order.noted": None})


@rules.action("record_payment", writes=("payment", "status"))
def record_payment(ctx: StepContext) -> None:
    ctx.data["payment"], ctx.data["status"] = "paid", "paid"


@rules.action("start_push", writes=("sync",))
def start_push(ctx: StepContext) -> None:
    ctx.data["sync"] = {"attempts": 0}


@rules.action("note_items", writes=("notes",))
def note_items(ctx: StepContext) -> None:
    ctx.data["notes"] = ["items"]


@rules.action("note_text", writes=("note_text",))
def note_text(ctx: StepContext) -> None:
    ctx.data["note_text"] = "text"


@rules.upgrade("split_sync")
def split_sync(data: dict[str, Any], state: str) -> tuple[dict[str, Any], str]:
    return data, state


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "order.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def problems(tmp_path: Path, text: str) -> list[ChartProblem]:
    with pytest.raises(ChartLoadError) as caught:
        load_chart(write(tmp_path, text), rules)
    return caught.value.problems


def line_of(text: str, snippet: str) -> int:
    return next(
        n for n, line in enumerate(textwrap.dedent(text).splitlines(), 1) if snippet in line
    )


def test_regions_writing_different_keys_load(tmp_path):
    load_chart(write(tmp_path, ORDER), rules)


def test_eng1_two_regions_of_the_chart_writing_one_key_on_one_event(tmp_path):
    text = ORDER.replace("actions: [start_push]", "actions: [start_push, record_payment]")
    [problem] = problems(tmp_path, text)
    assert problem.place == "transitions[0] and transitions[1] (event 'order.paid')"
    assert problem.line == line_of(text, "source: sync.idle") - 1
    assert problem.message == (
        "both write data key 'payment', 'status' in one step, from regions 'lifecycle' and "
        "'sync' of the parallel chart: let one region own the key, or guard them apart"
    )


def test_eng1_two_regions_of_a_nested_parallel_state_writing_one_key(tmp_path):
    text = ORDER.replace("actions: [note_text]", "actions: [note_text, note_items]")
    [problem] = problems(tmp_path, text)
    assert problem.place == "transitions[2] and transitions[3] (event 'order.noted')"
    assert "from regions 'sync.pushing.items' and 'sync.pushing.notes'" in problem.message
    assert "of parallel state 'sync.pushing'" in problem.message


def test_eng1_a_parent_and_its_childs_transitions_are_no_region_conflict(tmp_path):
    """Both lie in one region: the child's wins (inner first), they never fire together."""
    text = ORDER.replace("source: sync.pushing.notes", "source: sync.pushing").replace(
        "actions: [note_text]", "actions: [note_items]"
    )
    load_chart(write(tmp_path, text), rules)


def test_eng1_guards_that_exclude_each_other_keep_regions_apart(tmp_path):
    guarded = Rules()
    guarded.update(rules)
    guarded.guard("first")(lambda ctx: True)
    text = ORDER.replace("actions: [start_push]", "actions: [start_push, record_payment]")
    text = text.replace(
        "    actions: [record_payment]\n", "    guards: [first]\n    actions: [record_payment]\n"
    )
    text = text.replace(
        "    actions: [start_push, record_payment]\n",
        '    guards: ["!first"]\n    actions: [start_push, record_payment]\n',
    )
    load_chart(write(tmp_path, text), guarded)


def test_eng1_an_upgrade_names_a_registered_data_migration(tmp_path):
    text = ORDER.replace("data: split_sync", "data: split_synk")
    [problem] = problems(tmp_path, text)
    assert (problem.place, problem.line) == ("upgrades[0]", line_of(text, "data: split_synk"))
    assert problem.message == "unknown upgrade 'split_synk' (register it with Rules.upgrade)"
