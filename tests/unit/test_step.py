"""The pure step: outcomes, reasons and data isolation."""

from __future__ import annotations

import pytest

from engine import Outcome, Rules, step
from engine.chartset import ChartSet
from engine.step import EntityState, new_entity, step_in_place, step_trusted


def event(
    charts: ChartSet,
    type_: str,
    payload: dict | None = None,
    event_id: str = "e1",
    entity: str = "parcel:1",
    received_at: float = 1000.0,
):
    return charts.event_types.make(
        type_, entity, payload or {}, event_id=event_id, source="test", received_at=received_at
    )


def test_transition_changes_state_data_and_version(sample_charts):
    chart = sample_charts.by_kind["parcel"]
    result = step(
        chart, new_entity(chart, "parcel:1"), event(sample_charts, "parcel.pack", {"weight_kg": 2})
    )
    assert result.outcome is Outcome.TRANSITIONED
    assert (result.from_state, result.to_state) == ("created", "packed")
    assert result.entity.data == {"weight_kg": 2.0}
    assert result.entity.version == 1


def test_entering_a_state_arms_its_timer_from_the_event_time(sample_charts):
    chart = sample_charts.by_kind["parcel"]
    result = step(chart, new_entity(chart, "parcel:1"), event(sample_charts, "parcel.pack"))
    [timer] = result.timers
    assert timer.name == "ship_deadline" and timer.due_at == 1000.0 + 3600


def test_a_setting_overrides_a_timer_duration(sample_charts):
    chart = sample_charts.by_kind["parcel"]
    result = step(
        chart,
        new_entity(chart, "parcel:1"),
        event(sample_charts, "parcel.pack"),
        {"ship_deadline": "10m"},
    )
    assert result.timers[0].due_at == 1000.0 + 600


def test_leaving_a_state_cancels_its_timer(sample_charts):
    chart = sample_charts.by_kind["parcel"]
    packed = EntityState("parcel:1", "parcel", "packed", {}, 1)
    result = step(chart, packed, event(sample_charts, "parcel.cancel"))
    assert [(t.name, t.due_at) for t in result.timers] == [("ship_deadline", None)]


def test_event_not_allowed_in_state_is_ignored_with_reason(sample_charts):
    chart = sample_charts.by_kind["parcel"]
    result = step(chart, new_entity(chart, "parcel:1"), event(sample_charts, "parcel.deliver"))
    assert result.outcome is Outcome.IGNORED
    assert result.reason == "parcel.deliver is not allowed in state created"


def test_guard_refusal_is_ignored_with_the_guards_reason(sample_charts):
    chart = sample_charts.by_kind["parcel"]
    packed = EntityState("parcel:1", "parcel", "packed", {"weight_kg": 1.0}, 1)
    result = step(chart, packed, event(sample_charts, "parcel.ship", {}))
    assert result.outcome is Outcome.IGNORED and result.reason == "no tracking number"
    assert result.entity is packed and not result.commands


def test_final_state_is_never_left(sample_charts):
    chart = sample_charts.by_kind["parcel"]
    done = EntityState("parcel:1", "parcel", "delivered", {}, 3)
    result = step(chart, done, event(sample_charts, "parcel.note", {"text": "hi"}))
    assert result.outcome is Outcome.IGNORED and result.reason == "delivered is final"


def test_commands_carry_a_stable_idempotency_key(sample_charts):
    chart = sample_charts.by_kind["parcel"]
    packed = EntityState("parcel:1", "parcel", "packed", {}, 1)
    ship = event(sample_charts, "parcel.ship", {"tracking_number": "T1"}, event_id="ship-1")
    first = step(chart, packed, ship)
    again = step(chart, packed, ship)
    assert [c.idempotency_key for c in first.commands] == [
        c.idempotency_key for c in again.commands
    ]
    assert first.commands[0].payload == {"parcel": "1", "tracking_number": "T1"}


def _thing_charts(tmp_path, action) -> ChartSet:
    """A one-transition chart whose action is ``action``."""
    from engine import ChartPackage

    rules = Rules()
    rules.event("thing.go")
    rules.action("act")(action)
    (tmp_path / "thing.yaml").write_text(
        "name: thing\nentity_kind: thing\ninitial: a\nstates: {a: {label: A}, b: {label: B}}\n"
        "events: [thing.go]\ntransitions:\n"
        "  - {event: thing.go, source: a, target: b, actions: [act]}\n"
    )
    return ChartSet.load([ChartPackage.from_directory("t", tmp_path, rules)])


def _go(charts: ChartSet):
    return charts.event_types.make("thing.go", "thing:1", event_id="x", source="t", received_at=1.0)


@pytest.mark.parametrize("stepper", [step, step_in_place], ids=["step", "step_in_place"])
def test_a_failing_action_leaves_the_entity_untouched(tmp_path, stepper):
    def explode(ctx):
        ctx.data["items"].append("half-done")
        ctx.data["new"] = {"nested": [1]}
        raise ValueError("boom")

    charts = _thing_charts(tmp_path, explode)
    entity = EntityState("thing:1", "thing", "a", {"items": [], "n": 1.5}, 0)
    result = stepper(charts.by_kind["thing"], entity, _go(charts))
    assert result.outcome is Outcome.ERROR and result.entity.state == "a"
    assert "act failed: ValueError: boom" in result.reason
    assert entity.data == {"items": [], "n": 1.5}, "the stored data was not touched"


def test_data_that_is_not_json_is_an_error_and_changes_nothing_in_place(tmp_path):
    """In place, data is encoded at once: an action that leaves something JSON
    cannot hold gets an error outcome for its event, not a failed commit for
    the whole batch, and the data is as it was."""

    def store_an_object(ctx):
        ctx.data["items"].append(object())

    charts = _thing_charts(tmp_path, store_an_object)
    entity = EntityState("thing:1", "thing", "a", {"items": ["kept"]}, 0)
    result = step_in_place(charts.by_kind["thing"], entity, _go(charts))
    assert result.outcome is Outcome.ERROR and "not JSON" in result.reason
    assert entity.data == {"items": ["kept"]}


def _append_to_items(ctx):
    ctx.data["items"].append(len(ctx.data["items"]))
    ctx.emit("note", {"items": list(ctx.data["items"])})


def test_step_leaves_nested_data_of_its_input_as_it_was(tmp_path):
    """The pure step works on a deep copy: an action that appends to a nested
    list changes the result, never the entity it was given."""
    charts = _thing_charts(tmp_path, _append_to_items)
    entity = EntityState("thing:1", "thing", "a", {"items": [0]}, 0)
    result = step(charts.by_kind["thing"], entity, _go(charts))
    assert result.entity.data == {"items": [0, 1]} and result.entity.version == 1
    assert entity == EntityState("thing:1", "thing", "a", {"items": [0]}, 0)
    assert result.data_json is None and result.command_json is None


def test_step_in_place_changes_the_data_itself_and_returns_it_as_json(tmp_path):
    """In place, the entity's own dict moves on; what is stored is the JSON
    taken at the step, which later changes to the dict do not reach."""
    charts = _thing_charts(tmp_path, _append_to_items)
    entity = EntityState("thing:1", "thing", "a", {"items": [0]}, 0)
    result = step_in_place(charts.by_kind["thing"], entity, _go(charts))
    assert result.entity.data is entity.data and entity.data == {"items": [0, 1]}
    assert entity.state == "a", "only the data is shared: the old state stays"
    entity.data["items"].append("later")
    assert result.data_json == '{"items":[0,1]}'
    assert result.command_json == ['{"items":[0,1]}']


def test_data_that_is_not_json_is_an_error_in_the_pure_step_too(tmp_path):
    """The pure step refuses what the bus could not store, with the same reason."""

    def store_an_object(ctx):
        ctx.data["items"].append(object())

    charts = _thing_charts(tmp_path, store_an_object)
    entity = EntityState("thing:1", "thing", "a", {"items": ["kept"]}, 0)
    pure = step(charts.by_kind["thing"], entity, _go(charts))
    fast = step_in_place(charts.by_kind["thing"], entity, _go(charts))
    assert pure.outcome is fast.outcome is Outcome.ERROR
    assert pure.reason == fast.reason
    assert entity.data == {"items": ["kept"]}


def test_step_trusted_computes_what_step_does_on_a_shallow_copy(tmp_path):
    """Replay's variant: the same result; only the input's nested data may move."""
    charts = _thing_charts(tmp_path, _append_to_items)
    chart = charts.by_kind["thing"]
    entity = EntityState("thing:1", "thing", "a", {"items": [0], "n": 1}, 0)
    expected = step(chart, entity, _go(charts))
    got = step_trusted(chart, entity, _go(charts))
    assert (got.outcome, got.entity, got.commands) == (
        expected.outcome,
        expected.entity,
        expected.commands,
    )
    assert got.entity.data is not entity.data, "the top level is a copy"


@pytest.mark.parametrize("raw", ["90", "90s", "15m", "2h", "1d"])
def test_durations(raw):
    from engine.charts.schema import parse_duration

    assert parse_duration(raw) == {"90": 90, "90s": 90, "15m": 900, "2h": 7200, "1d": 86400}[raw]
