"""Helpers for the hierarchical step's tests: charts from YAML text, a rule
set whose 'log' action records its argument in a trace, and a stepper.

The trace is a list outside the entity's data: two parallel regions' actions
writing one data key in one step is an error (the step refuses it), so the
order of actions across regions is recorded where no region writes."""

from __future__ import annotations

from typing import Any

import yaml

from engine.charts.compiled import CompiledChart
from engine.charts.hierarchy import SearchOrder, inner_first
from engine.charts.loader import LoadedChart
from engine.charts.schema import ChartSpec
from engine.events import Event, Payload
from engine.rules import Rules, StepContext
from engine.step import EntityState, StepResult, new_entity, step


def traced_rules(trace: list[str], guards: dict[str, bool] | None = None) -> Rules:
    """Actions 'log=<text>' append the text to ``trace``; 'put=<key>:<v>' sets
    a top-level data key; guards named in ``guards`` answer as given, and
    'flag=<key>' holds when data[key] is truthy."""
    rules = Rules()

    @rules.action("log", takes_argument=True)
    def log(ctx: StepContext, text: str) -> None:
        trace.append(text)

    @rules.action("put", takes_argument=True)
    def put(ctx: StepContext, spec: str) -> None:
        key, _, value = spec.partition(":")
        ctx.data[key] = value

    @rules.action("append", takes_argument=True)
    def append(ctx: StepContext, key: str) -> None:
        ctx.data.setdefault(key, []).append(ctx.target)

    @rules.action("boom")
    def boom(ctx: StepContext) -> None:
        raise RuntimeError("boom")

    @rules.guard("flag", takes_argument=True)
    def flag(ctx: StepContext, key: str) -> bool:
        return bool(ctx.data.get(key))

    for name, answer in (guards or {}).items():
        rules.guard(name)(lambda ctx, answer=answer: answer)
    return rules


def chart(text: str, rules: Rules, search_order: SearchOrder = inner_first) -> CompiledChart:
    doc: dict[str, Any] = yaml.safe_load(text)
    doc.setdefault("name", "test")
    doc.setdefault("entity_kind", "test")
    loaded = LoadedChart(ChartSpec.model_validate(doc), "test.yaml", {})
    return CompiledChart(loaded, rules, search_order=search_order)


def event(event_type: str, at: float = 100.0, n: int = 0) -> Event:
    return Event(
        event_id=f"e{n}-{event_type}",
        type=event_type,
        source="test",
        entity="test:1",
        received_at=at,
        payload=Payload(),
    )


class Walker:
    """Steps one entity through a chart written in YAML, keeping every result
    and the trace of the 'log' actions."""

    def __init__(
        self,
        text: str,
        guards: dict[str, bool] | None = None,
        search_order: SearchOrder = inner_first,
    ) -> None:
        self.log: list[str] = []
        self.chart = chart(text, traced_rules(self.log, guards), search_order)
        self.entity: EntityState = new_entity(self.chart, "test:1")
        self.results: list[StepResult] = []

    def send(self, event_type: str, at: float = 100.0) -> StepResult:
        result = step(self.chart, self.entity, event(event_type, at, len(self.results)))
        self.results.append(result)
        self.entity = result.entity
        return result

    @property
    def state(self) -> str:
        return self.entity.state

    def take_trace(self) -> list[str]:
        """The actions logged since the last call."""
        found = list(self.log)
        self.log.clear()
        return found
