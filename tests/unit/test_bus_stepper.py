"""The batch stepper: a worker's batch stepped in arrival order into rows,
payloads stored as pydantic serializes them."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ConfigDict, Field

import engine.bus.stepper
from engine import ChartSet
from engine.bus.cache import EntityCache
from engine.bus.duplicates import DuplicateGuard
from engine.bus.stepper import BatchStepper, payload_json
from engine.events import Payload
from engine.sample import chart_package
from engine.step import new_entity

CHARTS = ChartSet.load([chart_package()])
PARCEL = CHARTS.by_kind["parcel"]


class Aliased(Payload):
    """A plugin's payload may name a field by alias and carry extra fields."""

    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)

    weight: float = Field(alias="weightKg")
    tags: list[str] = []


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)


@given(
    st.floats(),
    st.lists(st.text()),
    st.dictionaries(st.from_regex(r"x_[a-z]{1,5}", fullmatch=True), JSON),
)
def test_a_payload_is_stored_as_model_dump_json_writes_it(weight, tags, extra):
    """For any payload (infinities, NaN, unicode, extra fields, an alias), the
    stored JSON is what pydantic's public ``model_dump_json`` gives."""
    payload = Aliased(weightKg=weight, tags=tags, **extra)
    assert payload_json(payload) == payload.model_dump_json()


def _items(*specs: tuple[str, str, dict, str]) -> list:
    loop = asyncio.new_event_loop()
    try:
        return [
            (
                CHARTS.event_types.make(
                    kind, "parcel:1", payload, event_id=event_id, source=source, received_at=1.0
                ),
                loop.create_future(),
            )
            for kind, event_id, payload, source in specs
        ]
    finally:
        loop.close()


def _stepper() -> tuple[BatchStepper, EntityCache, DuplicateGuard]:
    cache, guard = EntityCache(10), DuplicateGuard()
    cache.load("parcel:1", new_entity(PARCEL, "parcel:1"))
    return BatchStepper(CHARTS, cache, guard), cache, guard


def test_a_batch_is_stepped_in_arrival_order_into_its_rows():
    stepper, cache, _guard = _stepper()
    items = _items(
        ("parcel.pack", "a", {"weight_kg": 2}, "t"),
        ("parcel.pack", "a", {"weight_kg": 3}, "t"),
        ("parcel.ship", "b", {"tracking_number": "T1"}, "t"),
        ("parcel.cancel", "c", {}, "t"),
    )
    pending = stepper.step(items, known=set())
    assert [(r.event_id, r.outcome, r.to_state) for r in pending.batch.events] == [
        ("a", "transitioned", "packed"),
        ("b", "transitioned", "shipped"),
        ("c", "ignored", None),
    ]
    assert [d.event_id for d in pending.batch.duplicates] == ["a"]
    assert pending.batch.events[0].payload == '{"weight_kg":2.0}'
    assert [row.event_id for _sink, row in pending.sinks] == ["a", "a", "b", "c"]
    assert cache["parcel:1"].state == "shipped" and cache.pinned() == 1
    assert pending.keys == ["parcel:1", "parcel:1"]


def test_a_stored_id_is_a_duplicate_and_a_timer_event_is_marked_fired():
    stepper, _cache, _guard = _stepper()
    items = _items(
        ("parcel.note", "old", {"text": "x"}, "t"), ("parcel.note", "t1", {"text": "y"}, "timer")
    )
    pending = stepper.step(items, known={"old"})
    assert [d.event_id for d in pending.batch.duplicates] == ["old"]
    assert pending.timers_fired == ["t1"]


def test_a_batch_that_breaks_releases_its_ids_and_forgets_the_cache(monkeypatch):
    """A bug or an interrupt mid-batch: nothing of it is kept, its ids can be
    sent again, and states it stepped are not served."""
    stepper, cache, guard = _stepper()
    real = engine.bus.stepper.step_in_place

    def breaking(chart, entity, event, settings):
        if event.event_id == "b":
            raise KeyboardInterrupt
        return real(chart, entity, event, settings)

    monkeypatch.setattr(engine.bus.stepper, "step_in_place", breaking)
    items = _items(("parcel.pack", "a", {"weight_kg": 2}, "t"), ("parcel.cancel", "b", {}, "t"))
    with pytest.raises(KeyboardInterrupt):
        stepper.step(items, known=set())
    assert guard.claim("a", set()), "released"
    assert cache.get("parcel:1") is None and cache.epoch == 1
