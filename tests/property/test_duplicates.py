"""ENG-2 as a property: a repeated event_id is recorded as a duplicate and changes nothing."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import ChartSet, Engine, FakeClock
from engine.sample import chart_package
from engine.settings import EngineSettings
from tests.parcel_model import EVENT_TYPES, ParcelModel, payload_for

CHARTS = ChartSet.load([chart_package()])

deliveries = st.lists(
    st.tuples(
        st.integers(0, 11),  # which event id (a small pool, so ids repeat)
        st.integers(0, 2),  # which parcel
        st.sampled_from(EVENT_TYPES),
        st.integers(0, 40),  # payload variety
    ),
    min_size=1,
    max_size=40,
)


async def run_deliveries(items: list[tuple[int, int, str, int]], concurrently: bool) -> None:
    with tempfile.TemporaryDirectory() as folder:
        engine = await Engine.open(
            Path(folder) / "p.db",
            charts=CHARTS,
            clock=FakeClock(),
            settings=EngineSettings(run_timers=False, run_outbox=False),
        )
        try:
            await check_deliveries(engine, items, concurrently)
        finally:
            await engine.stop()


async def check_deliveries(
    engine: Engine, items: list[tuple[int, int, str, int]], concurrently: bool
) -> None:
    events = [
        engine.make_event(
            event_type, f"parcel:{parcel}", payload_for(event_type, n), event_id=f"id-{id_index}"
        )
        for id_index, parcel, event_type, n in items
    ]
    if concurrently:
        receipts = await asyncio.gather(*[await engine.submit(e) for e in events])
    else:
        receipts = [await engine.publish(e) for e in events]
    # Exactly one delivery of each id counts. Published one by one it is the
    # first; all in flight at once, copies sent for different entities race
    # (ENG-4 orders events per entity only), so any one copy may win.
    winners: dict[str, int] = {}
    for index, receipt in enumerate(receipts):
        if receipt.outcome != "duplicate":
            assert receipt.event_id not in winners, f"{receipt.event_id} counted twice"
            winners[receipt.event_id] = index
    assert set(winners) == {e.event_id for e in events}, "every id counted once"
    if not concurrently:
        first = {}
        for index, event in enumerate(events):
            first.setdefault(event.event_id, index)
        assert winners == first
    models: dict[str, ParcelModel] = {}
    for index in sorted(winners.values()):
        event = events[index]
        models.setdefault(event.entity, ParcelModel()).apply(event.type, event.payload_dict())
    assert await engine.store.count("events") == len(winners)
    assert await engine.store.count("duplicates") == len(items) - len(winners)
    for key, model in models.items():
        entity = await engine.entity(key)
        if model.version == 0:
            assert entity is None
        else:
            assert (entity.state, entity.data, entity.version) == (
                model.state,
                model.data,
                model.version,
            )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(deliveries, st.booleans())
def test_eng2_repeated_event_ids_change_nothing(items, concurrently):
    """ENG-2: whatever the mix of events and repeated ids, one after another or all
    in flight at once, the first delivery of an id counts and every repeat is a
    recorded duplicate that leaves every entity as the model says."""
    asyncio.run(run_deliveries(items, concurrently))
