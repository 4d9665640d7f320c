"""The direct dispatch table and the `transitions` Machine agree on every step.

`CompiledChart.fire` runs the chart's (event, state) table; `fire_with_machine`
triggers the shared `transitions.Machine` built from the same chart. For any
sequence of events, allowed or not, both must reach the same state and leave
the same data, commands, timers and refusal reasons.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import ChartSet
from engine.charts.compiled import ActionFailed
from engine.rules import StepContext
from engine.sample import chart_package as sample_package
from engine.step import json_copy, new_entity, step, step_in_place, step_trusted
from engine.testing import sequences
from statecharts import chart_package
from tests.property.test_channel_charts import PAYLOADS

CHANNEL = ChartSet.load([chart_package()])
SAMPLE = ChartSet.load([sample_package()])
# The flat charts: a chart with compound states steps through the hierarchical
# step, which the differential hierarchy property holds to its reference.
CASES = [
    (charts, name)
    for charts, name in [
        (CHANNEL, "shop_connection"),
        (CHANNEL, "product_listing"),
        (CHANNEL, "order"),
        (SAMPLE, "parcel"),
    ]
    if charts.by_name[name].tree.is_flat
]


# A chart, and any sequence of its events (allowed in the state or not).
CHART_AND_SEQUENCE = st.sampled_from(CASES).flatmap(
    lambda case: st.tuples(st.just(case), sequences(case[0], case[1], PAYLOADS, max_size=30))
)


def events_of(charts: ChartSet, key: str, sequence):
    """The drawn (type, payload) pairs as events for ``key``, a second apart."""
    for index, (kind, payload) in enumerate(sequence):
        yield charts.event_types.make(
            kind,
            key,
            payload,
            event_id=f"e{index}",
            source="test",
            received_at=1_700_000_000.0 + index,
        )


def run(fire, event, entity):
    ctx = StepContext(
        event=event,
        data=json_copy(entity.data),
        state=entity.state,
        target="",
        now=event.received_at or 0.0,
        settings={},
    )
    try:
        state = (
            fire(event.type, entity.state, ctx)
            if event.type in fire.__self__.allowed
            and entity.state in fire.__self__.allowed[event.type]
            else None
        )
        error = None
    except ActionFailed as failure:
        state, error = None, str(failure)
    return (
        state,
        error,
        ctx.data,
        [(c.type, dict(c.payload), c.idempotency_key) for c in ctx.commands],
        ctx.timers,
        ctx.refusals,
        ctx.target,
    )


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(CHART_AND_SEQUENCE)
def test_the_dispatch_table_and_the_transitions_machine_agree(drawn):
    (charts, name), sequence = drawn
    chart = charts.by_name[name]
    entity = new_entity(chart, f"{chart.entity_kind}:1")
    for event in events_of(charts, entity.key, sequence):
        kind = event.type
        assert run(chart.fire, event, entity) == run(chart.fire_with_machine, event, entity), kind
        result = step(chart, entity, event, charts.settings)
        if result.to_state is not None:
            entity = result.entity


def _observed(result) -> tuple:
    """What a step decides, with data and commands as they will be stored."""
    from engine.store.sqlite import dumps

    data_json = result.data_json or dumps(result.entity.data)
    commands = [(c.type, c.idempotency_key) for c in result.commands]
    payloads = result.command_json or [dumps(dict(c.payload)) for c in result.commands]
    return (
        result.outcome,
        result.from_state,
        result.to_state,
        result.reason,
        result.entity.state,
        result.entity.version,
        data_json,
        commands,
        payloads,
        result.timers,
    )


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(CHART_AND_SEQUENCE)
def test_eng2_the_bus_in_place_step_stores_what_the_pure_step_does(drawn):
    """ENG-2: the bus steps in place (actions change the cached data after a
    JSON snapshot; data and payloads are encoded at once). For any sequence,
    what it would store equals what the pure step computes, step by step."""
    (charts, name), sequence = drawn
    chart = charts.by_name[name]
    pure = new_entity(chart, f"{chart.entity_kind}:1")
    in_place = new_entity(chart, f"{chart.entity_kind}:1")
    for event in events_of(charts, pure.key, sequence):
        expected = step(chart, pure, event, charts.settings)
        got = step_in_place(chart, in_place, event, charts.settings)
        assert _observed(got) == _observed(expected), event.type
        if expected.to_state is not None:
            pure, in_place = expected.entity, got.entity


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(CHART_AND_SEQUENCE)
def test_the_pure_step_never_changes_its_input(drawn):
    """For any sequence, every state the pure step was given is, afterwards,
    exactly as it was: a history of states can be kept and compared."""
    (charts, name), sequence = drawn
    chart = charts.by_name[name]
    entity = new_entity(chart, f"{chart.entity_kind}:1")
    history = []
    for event in events_of(charts, entity.key, sequence):
        history.append((entity, json_copy(entity.as_dict())))
        result = step(chart, entity, event, charts.settings)
        if result.to_state is not None:
            entity = result.entity
    for given_state, as_given in history:
        assert given_state.as_dict() == as_given


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(CHART_AND_SEQUENCE)
def test_eng2_replay_trusted_step_matches_the_pure_step_on_non_errors(drawn):
    """ENG-2: replay steps a logged non-error outcome on a shallow copy; for
    any sequence it reaches what the pure step does wherever the pure step did
    not fail (a logged error is replayed with the pure step)."""
    (charts, name), sequence = drawn
    chart = charts.by_name[name]
    entity = new_entity(chart, f"{chart.entity_kind}:1")
    for event in events_of(charts, entity.key, sequence):
        expected = step(chart, entity, event, charts.settings)
        if expected.outcome != "error":
            got = step_trusted(chart, json_copy_entity(entity), event, charts.settings)
            assert _observed(got) == _observed(expected), event.type
        if expected.to_state is not None:
            entity = expected.entity


def json_copy_entity(entity):
    """A copy the trusted step may change, so ``entity`` stays for the next step."""
    return type(entity)(
        entity.key, entity.chart, entity.state, json_copy(entity.data), entity.version
    )
