"""Hypothesis strategies derived from a chart.

- `payloads`: a payload for an event type (derived from its pydantic model,
  or the strategy you give for it);
- `walks`: valid event sequences, walks of the chart's graph where every
  event actually fires (guards respected);
- `sequences`: arbitrary sequences, including events the state does not allow;
- `deliveries`: a sequence delivered with duplicates, in any order, some lost;
- `configurations`: configurations the chart's entities can be in (one atomic
  state per active region), for read models and views.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping
from typing import Any, Literal, Union, get_args, get_origin

from hypothesis import strategies as st
from pydantic import BaseModel

from engine.charts.compiled import CompiledChart
from engine.charts.configuration import join_states
from engine.charts.hierarchy import TOP
from engine.chartset import ChartSet
from engine.step import Outcome, new_entity, step
from engine.testing.configurations import ChartShape
from engine.testing.paths import chart_tree

PayloadStrategies = Mapping[str, st.SearchStrategy[dict[str, Any]]]
EventSpec = tuple[str, dict[str, Any]]

_TEXT = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=12)


def _for_annotation(annotation: Any, depth: int = 0) -> st.SearchStrategy[Any]:
    origin = get_origin(annotation)
    args = get_args(annotation)
    if origin is typing.Annotated:
        return _for_annotation(args[0], depth)
    if origin in (Union, types.UnionType):
        return st.one_of(*[_for_annotation(a, depth) for a in args])
    if origin is Literal:
        return st.sampled_from(args)
    if origin in (list, tuple, set, frozenset):
        inner = _for_annotation(args[0], depth + 1) if args else _TEXT
        return st.lists(inner, max_size=3 if depth < 2 else 0)
    if origin is dict:
        return st.dictionaries(_TEXT, st.one_of(_TEXT, st.integers(0, 100)), max_size=2)
    if annotation is type(None):
        return st.none()
    if annotation is bool:
        return st.booleans()
    if annotation is int:
        return st.integers(0, 2**40)
    if annotation is float:
        return st.floats(0, 1e6, allow_nan=False)
    if annotation is str:
        return _TEXT
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return model_dicts(annotation, depth + 1)
    return st.none()


def model_dicts(model: type[BaseModel], depth: int = 0) -> st.SearchStrategy[dict[str, Any]]:
    """Dicts that validate as ``model`` (fields drawn from their annotations)."""
    required: dict[str, st.SearchStrategy[Any]] = {}
    optional: dict[str, st.SearchStrategy[Any]] = {}
    for name, info in model.model_fields.items():
        strategy = _for_annotation(info.annotation, depth)
        (required if info.is_required() else optional)[name] = strategy

    def valid(candidate: dict[str, Any]) -> bool:
        try:
            model.model_validate(candidate)
        except ValueError:
            return False
        return True

    return st.fixed_dictionaries(required, optional=optional).filter(valid)


def payloads(
    charts: ChartSet, event_type: str, custom: PayloadStrategies | None = None
) -> st.SearchStrategy[dict[str, Any]]:
    if custom and event_type in custom:
        return custom[event_type]
    return model_dicts(charts.event_types.payload_model(event_type))


def sequences(
    charts: ChartSet, chart_name: str, custom: PayloadStrategies | None = None, max_size: int = 20
) -> st.SearchStrategy[list[EventSpec]]:
    """Arbitrary sequences of the chart's events, allowed in the state or not."""
    chart = charts.by_name[chart_name]
    kinds = sorted(chart.accepted_events)
    one = st.sampled_from(kinds).flatmap(
        lambda kind: payloads(charts, kind, custom).map(lambda payload: (kind, payload))
    )
    return st.lists(one, max_size=max_size)


def walks(
    charts: ChartSet,
    chart_name: str,
    custom: PayloadStrategies | None = None,
    max_steps: int = 20,
    tries: int = 8,
) -> st.SearchStrategy[list[EventSpec]]:
    """Valid sequences: each event has a transition from a state active where
    the walk is, and fires (its guards hold), so the walk follows the chart's
    graph; in a chart with regions, a walk moves whichever region the event moves."""
    chart = charts.by_name[chart_name]
    shape = ChartShape(chart)
    key = f"{chart.entity_kind}:walk"

    @st.composite
    def walk(draw: st.DrawFn) -> list[EventSpec]:
        entity = new_entity(chart, key)
        taken: list[EventSpec] = []
        for index in range(draw(st.integers(0, max_steps))):
            allowed = shape.enabled_events(entity.state)
            if not allowed:
                break
            for attempt in range(tries):
                kind = draw(st.sampled_from(allowed))
                payload = draw(payloads(charts, kind, custom))
                event = charts.event_types.make(
                    kind,
                    key,
                    payload,
                    event_id=f"w{index}.{attempt}",
                    source="walk",
                    received_at=1.0 + index,
                )
                result = step(chart, entity, event, charts.settings)
                if result.outcome is Outcome.TRANSITIONED:
                    entity = result.entity
                    taken.append((kind, payload))
                    break
        return taken

    return walk()


def configurations(chart: CompiledChart) -> st.SearchStrategy[str]:
    """Stored configurations of ``chart``: each active compound state with one
    active child, each active parallel state with all its regions."""
    tree = chart_tree(chart)

    def under(state_id: str) -> st.SearchStrategy[list[str]]:
        children = tree.children(state_id)
        if not children:
            return st.just([state_id])
        if tree.kind(state_id) == "parallel":
            return st.tuples(*(under(child) for child in children)).map(
                lambda parts: [leaf for part in parts for leaf in part]
            )
        return st.sampled_from(children).flatmap(under)

    return under(TOP).map(join_states)


def deliveries(events: list[Any]) -> st.SearchStrategy[list[Any]]:
    """The events as a flaky network delivers them: any order, repeats, losses."""
    if not events:
        return st.just([])
    return st.lists(st.sampled_from(events), max_size=3 * len(events)).flatmap(st.permutations)
