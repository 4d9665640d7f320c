"""A partition's timers and commands run on its owner only (ENG-11): the
store view a worker's timer loop and outbox use keeps its own partitions'
due timers and claimed commands, and gives the others' back unclaimed."""

from __future__ import annotations

import pytest

from engine import ChartSet, Engine, FakeClock
from engine.cluster.owned import OwnedPartitions
from engine.cluster.partitions import partition_of
from engine.sample import chart_package
from engine.settings import EngineSettings

pytestmark = pytest.mark.services

PARCELS = [f"parcel:{index}" for index in range(12)]


async def test_only_the_owned_partitions_timers_and_commands_are_seen(
    pg_database_url: str,
) -> None:
    clock = FakeClock()
    charts = ChartSet.load([chart_package()], {"ship_deadline": "1m"})
    settings = EngineSettings(lock=False, run_timers=False, run_outbox=False)
    engine = await Engine.open(pg_database_url, charts=charts, clock=clock, settings=settings)
    try:
        for index, parcel in enumerate(PARCELS):
            await engine.publish(engine.make_event("parcel.pack", parcel, event_id=f"p{index}"))
        for index, parcel in enumerate(PARCELS[:6]):
            ship = engine.make_event(
                "parcel.ship", parcel, {"tracking_number": "T"}, event_id=f"s{index}"
            )
            await engine.publish(ship)
        mine = {partition_of(parcel) for parcel in PARCELS[::2]}
        store = engine.store
        view = OwnedPartitions(store, mine.__contains__)
        later = clock.now() + 3600
        timers = await view.due_timers(later)
        # Shipping cancelled the deadline of the first six.
        assert {t.entity for t in timers} == {p for p in PARCELS[6:] if partition_of(p) in mine}
        claimed = await view.claim_commands("me", clock.now(), 60.0, {"notify_buyer"})
        assert {c.entity for c, _ in claimed} == {p for p in PARCELS[:6] if partition_of(p) in mine}
        # What is not this worker's was given back: another owner claims it now.
        theirs = OwnedPartitions(store, lambda p: p not in mine)
        others = await theirs.claim_commands("them", clock.now(), 60.0, {"notify_buyer"})
        assert {c.entity for c, _ in others} == {
            p for p in PARCELS[:6] if partition_of(p) not in mine
        }
        assert claimed and others and timers
        assert isinstance(view.path, str), "everything else reaches the store as it is"
    finally:
        await engine.stop()
