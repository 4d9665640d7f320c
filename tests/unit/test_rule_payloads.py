"""A rule's `StepContext[Model]` is what its events carry: checked on load, true at run time."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine import ChartLoadError, Rules, load_chart
from engine.charts.rule_payloads import declared_payloads
from engine.chartset import ChartPackage, ChartSet
from engine.clock import FakeClock
from engine.events import EmptyPayload, Payload
from engine.rules import StepContext
from engine.testing import ChartHarness


class Paid(Payload):
    amount: int


class PaidInFull(Paid):
    """A subclass: a rule that reads `Paid` reads it too."""


class Refunded(Payload):
    reason: str


CHART = """
name: till
entity_kind: till
initial: open
states:
  open: {label: Open}
  closed: {label: Closed, final: true}
events: [till.close]
transitions:
  - event: till.close
    source: open
    target: closed
    guards: [GUARD]
    actions: [ACTION]
"""


def _rules(close_payload: type[Payload]) -> Rules:
    rules = Rules()
    rules.event("till.close", close_payload)

    @rules.guard("paid_something")
    def paid_something(ctx: StepContext[Paid]) -> bool:
        return ctx.payload.amount > 0

    @rules.guard("always")
    def always(ctx: StepContext) -> bool:
        return True

    @rules.action("record_amount")
    def record_amount(ctx: StepContext[Paid]) -> None:
        ctx.data["amount"] = ctx.payload.amount

    @rules.action("record_either")
    def record_either(ctx: StepContext[Paid | Refunded]) -> None:
        payload = ctx.payload
        ctx.data["how"] = payload.amount if isinstance(payload, Paid) else payload.reason

    @rules.action("record_nothing")
    def record_nothing(ctx: StepContext) -> None:
        ctx.data["closed"] = True

    return rules


def _chart(tmp_path: Path, guard: str, action: str) -> Path:
    path = tmp_path / "till.yaml"
    text = textwrap.dedent(CHART).replace("GUARD", guard).replace("ACTION", action)
    path.write_text(text)
    return path


def test_a_rule_named_on_an_event_of_another_payload_is_refused_on_load(tmp_path):
    path = _chart(tmp_path, "paid_something", "record_amount")
    with pytest.raises(ChartLoadError) as caught:
        load_chart(path, _rules(Refunded))
    messages = [str(p) for p in caught.value.problems]
    assert len(messages) == 2
    assert "guard 'paid_something' reads a Paid payload" in messages[0]
    assert "action 'record_amount' reads a Paid payload" in messages[1]
    assert all("event 'till.close' carries Refunded" in m for m in messages)
    assert all("transitions[0]" in m for m in messages)


@pytest.mark.parametrize(
    ("carried", "action"),
    [
        (Paid, "record_amount"),
        (PaidInFull, "record_amount"),  # a subclass of what the rule reads
        (Refunded, "record_either"),  # one member of the union the rule reads
        (EmptyPayload, "record_nothing"),  # a bare StepContext reads any payload
    ],
)
def test_a_rule_loads_on_events_carrying_what_it_reads(tmp_path, carried, action):
    guard = "always" if carried in (Refunded, EmptyPayload) else "paid_something"
    load_chart(_chart(tmp_path, guard, action), _rules(carried))


def test_what_the_signature_names_is_what_the_rule_sees(tmp_path):
    rules = _rules(PaidInFull)
    charts = ChartSet.load(
        [ChartPackage("till", [_chart(tmp_path, "paid_something", "record_either")], rules)]
    )
    harness = ChartHarness(charts, FakeClock())
    harness.apply(harness.make("till.close", "till:1", {"amount": 7}))
    assert harness.state("till:1") == "closed"
    assert harness.entities["till:1"].data == {"how": 7}


MODELS = [Payload, EmptyPayload, Paid, PaidInFull, Refunded]


@given(st.lists(st.sampled_from(MODELS), min_size=1, max_size=3, unique=True))
def test_declared_payloads_are_the_members_of_the_annotation(members):
    annotation = members[0]
    for member in members[1:]:
        annotation = annotation | member

    def rule(ctx: StepContext) -> None:
        pass

    rule.__annotations__["ctx"] = StepContext[annotation]
    # set: typing caches `StepContext[A | B]` and `StepContext[B | A]` as one alias
    assert set(declared_payloads(rule) or ()) == set(members)


def test_a_bare_context_or_an_unresolvable_annotation_declares_nothing():
    def bare(ctx: StepContext) -> None:
        pass

    def unresolvable(ctx: StepContext[NotImported]) -> None:  # noqa: F821
        pass

    assert declared_payloads(bare) is None
    assert declared_payloads(unresolvable) is None
