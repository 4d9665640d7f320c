"""A small chart with parallel regions, compound states, entry/exit actions,
history and a timer on a compound state, as a `ChartSet` for the toolkit's tests.

Compiled straight from its spec (no chart package), so the tests need nothing
installed: regions ``lifecycle`` (open / on_hold / closed, final) and ``sync``
(idle / working {sending, waiting} / failed / done, final). Two edges need
more than a path of their own region: ``order.escalate`` a note whose text an
earlier step's payload gave, ``sync.abandon`` the other region on hold.
"""

from __future__ import annotations

import yaml

from engine.charts.compiled import CompiledChart
from engine.charts.loader import LoadedChart
from engine.charts.schema import ChartSpec
from engine.chartset import ChartSet
from engine.events import Payload, TimerPayload
from engine.rules import Rules, StepContext

CHART = """
name: shop_order
entity_kind: shop_order
parallel: true
states:
  lifecycle:
    label: Lifecycle
    initial: open
    states:
      open: {label: Open, entry: [count_opened]}
      on_hold: {label: On hold}
      closed: {label: Closed, final: true}
  sync:
    label: Shoplazza sync
    initial: idle
    states:
      idle: {label: Not synced}
      working:
        label: Syncing
        initial: sending
        exit: [count_attempt]
        states:
          sending: {label: Sending}
          waiting: {label: Waiting}
      failed: {label: Failed}
      done: {label: Synced, final: true}
events: [order.hold, order.release, order.close, sync.start, sync.sent, sync.fail,
         sync.retry, sync.ok, order.note, sync.deadline, order.escalate, sync.abandon]
transitions:
  - {event: order.hold, source: lifecycle.open, target: lifecycle.on_hold}
  - {event: order.release, source: lifecycle.on_hold, target: lifecycle.open}
  # The region's own states, not the region: from `lifecycle` the domain
  # would be the chart's top, and closing would re-enter sync at idle,
  # leaving a sync already done (the stateful machine caught it).
  - {event: order.close, source: [lifecycle.open, lifecycle.on_hold], target: lifecycle.closed}
  - {event: sync.start, source: sync.idle, target: sync.working, guards: [ready]}
  - {event: sync.sent, source: sync.working.sending, target: sync.working.waiting}
  - {event: sync.fail, source: sync.working, target: sync.failed}
  - {event: sync.retry, source: sync.failed, target: sync.working, history: deep}
  - {event: sync.ok, source: sync.working.waiting, target: sync.done}
  - {event: order.note, source: "*", actions: [append_note]}
  - {event: sync.deadline, source: sync.working, target: sync.failed}
  - event: order.escalate
    source: lifecycle.open
    target: lifecycle.on_hold
    guards: [noted_urgent]
  - event: sync.abandon
    source: sync.failed
    target: sync.done
    guards: ["in_state=lifecycle.on_hold"]
timers:
  - {name: sync_deadline, state: sync.working, event: sync.deadline, after: 15m}
"""


class StartPayload(Payload):
    ready: bool = False


class NotePayload(Payload):
    text: str


def nested_rules() -> Rules:
    rules = Rules()
    models: dict[str, type[Payload]] = {
        "sync.start": StartPayload,
        "order.note": NotePayload,
        "sync.deadline": TimerPayload,
    }
    for event in ChartSpec.model_validate(yaml.safe_load(CHART)).events:
        rules.event(event, models.get(event))

    @rules.guard("ready", refusal="not ready")
    def ready(ctx: StepContext[StartPayload]) -> bool:
        return ctx.payload.ready

    @rules.guard("noted_urgent", refusal="no urgent note")
    def noted_urgent(ctx: StepContext) -> bool:
        return "urgent" in ctx.data.get("notes", [])

    @rules.action("append_note")
    def append_note(ctx: StepContext[NotePayload]) -> None:
        ctx.data.setdefault("notes", []).append(ctx.payload.text)

    @rules.action("count_opened")
    def count_opened(ctx: StepContext) -> None:
        ctx.data["opened"] = ctx.data.get("opened", 0) + 1

    @rules.action("count_attempt")
    def count_attempt(ctx: StepContext) -> None:
        ctx.data["attempts"] = ctx.data.get("attempts", 0) + 1

    return rules


def nested_chart_set() -> ChartSet:
    rules = nested_rules()
    spec = ChartSpec.model_validate(yaml.safe_load(CHART))
    chart = CompiledChart(LoadedChart(spec, "shop_order.yaml", {}), rules)
    return ChartSet([chart], rules, {})
