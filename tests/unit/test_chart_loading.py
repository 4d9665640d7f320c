"""ENG-1: chart files are validated on load, every problem named with file and place."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from engine import ChartLoadError, Rules, load_chart
from engine.charts.schema import chart_json_schema
from engine.sample import rules as sample_rules

VALID = """
name: parcel
entity_kind: parcel
initial: created
states:
  created: {label: Created}
  packed: {label: Packed}
  shipped: {label: Shipped, final: true}
events: [parcel.pack, parcel.ship]
transitions:
  - event: parcel.pack
    source: created
    target: packed
  - event: parcel.ship
    source: packed
    target: shipped
    guards: [has_tracking]
    actions: [record_tracking]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "chart.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def problems(tmp_path: Path, text: str, rules: Rules = sample_rules) -> list[str]:
    path = write(tmp_path, text)
    with pytest.raises(ChartLoadError) as caught:
        load_chart(path, rules)
    messages = [str(p) for p in caught.value.problems]
    assert all(str(path) in m for m in messages), "every problem names the file"
    return messages


def test_valid_chart_loads(tmp_path):
    loaded = load_chart(write(tmp_path, VALID), sample_rules)
    assert loaded.spec.initial == "created"
    assert set(loaded.spec.states) == {"created", "packed", "shipped"}


def test_eng1_unknown_state_is_named_with_its_transition(tmp_path):
    """ENG-1: unknown state is named with its transition."""
    text = VALID.replace("target: shipped", "target: shiped")
    [message] = problems(tmp_path, text)
    assert "transitions[1]" in message and "unknown target state 'shiped'" in message
    assert ":16:" in message or ":17:" in message, "the line of the transition is given"


def test_eng1_unknown_source_state(tmp_path):
    """ENG-1: unknown source state."""
    text = VALID.replace("source: packed", "source: [packd]")
    [message] = problems(tmp_path, text)
    assert "unknown source state 'packd'" in message


def test_eng1_unreachable_state(tmp_path):
    """ENG-1: unreachable state."""
    text = VALID.replace(
        "  shipped: {label: Shipped, final: true}",
        "  shipped: {label: Shipped, final: true}\n  lost: {label: Lost}",
    )
    [message] = problems(tmp_path, text)
    assert "state 'lost'" in message and "unreachable" in message


def test_eng1_missing_initial_state(tmp_path):
    """ENG-1: missing initial state."""
    text = VALID.replace("initial: created\n", "")
    messages = problems(tmp_path, text)
    assert any("missing initial state" in m for m in messages)


def test_eng1_initial_state_that_does_not_exist(tmp_path):
    """ENG-1: initial state that does not exist."""
    [message] = problems(tmp_path, VALID.replace("initial: created", "initial: nowhere"))
    assert "initial" in message and "unknown state 'nowhere'" in message


def test_eng1_unknown_guard(tmp_path):
    """ENG-1: unknown guard."""
    [message] = problems(tmp_path, VALID.replace("[has_tracking]", "[has_trackin]"))
    assert "transitions[1]" in message and "unknown guard 'has_trackin'" in message


def test_eng1_unknown_action(tmp_path):
    """ENG-1: unknown action."""
    [message] = problems(tmp_path, VALID.replace("[record_tracking]", "[record_trackin]"))
    assert "transitions[1]" in message and "unknown action 'record_trackin'" in message


def test_eng1_two_transitions_that_could_both_fire(tmp_path):
    """ENG-1: two transitions that could both fire."""
    text = (
        VALID
        + """
  - event: parcel.ship
    source: packed
    target: created
"""
    )
    [message] = problems(tmp_path, text)
    assert "transitions[1] and transitions[2]" in message
    assert "both can fire from state 'packed'" in message


def test_eng1_exclusive_guards_are_not_a_conflict(tmp_path):
    """ENG-1: exclusive guards are not a conflict."""
    text = (
        VALID
        + """
  - event: parcel.ship
    source: packed
    target: created
    guards: ["!has_tracking"]
"""
    )
    load_chart(write(tmp_path, text), sample_rules)


def test_eng1_a_wildcard_source_overlapping_another_is_a_conflict(tmp_path):
    """ENG-1: a wildcard source overlapping another is a conflict."""
    text = (
        VALID
        + """
  - event: parcel.pack
    source: "*"
"""
    )
    [message] = problems(tmp_path, text)
    assert "both can fire from state 'created'" in message


def test_eng1_every_problem_is_reported_at_once(tmp_path):
    """ENG-1: every problem is reported at once."""
    text = (
        VALID.replace("[has_tracking]", "[nope]")
        .replace("[record_tracking]", "[nada]")
        .replace("target: packed", "target: pakced")
    )
    messages = problems(tmp_path, text)
    assert len(messages) == 3


def test_eng1_leaving_a_final_state_is_refused(tmp_path):
    """ENG-1: leaving a final state is refused."""
    text = (
        VALID
        + """
  - event: parcel.pack
    source: shipped
    target: packed
"""
    )
    [message] = problems(tmp_path, text)
    assert "final state 'shipped' cannot be left" in message


def test_eng1_duplicate_yaml_keys_are_refused(tmp_path):
    """ENG-1: duplicate yaml keys are refused."""
    text = VALID.replace(
        "  packed: {label: Packed}", "  packed: {label: Packed}\n  packed: {label: P}"
    )
    messages = problems(tmp_path, text)
    assert any("duplicate key 'packed'" in m for m in messages)


def test_eng1_schema_errors_name_the_place(tmp_path):
    """ENG-1: schema errors name the place."""
    text = VALID.replace("  created: {label: Created}", "  created: {lable: Created}")
    messages = problems(tmp_path, text)
    assert any("states.created" in m for m in messages)


def test_eng1_an_event_the_chart_does_not_declare(tmp_path):
    """ENG-1: an event the chart does not declare."""
    text = VALID.replace("events: [parcel.pack, parcel.ship]", "events: [parcel.pack]")
    [message] = problems(tmp_path, text)
    assert "not in the chart's events" in message


def test_json_schema_export_describes_the_format():
    schema = chart_json_schema()
    assert schema["title"] == "channelsync statechart"
    assert {"name", "entity_kind", "states", "transitions"} <= set(schema["properties"])
