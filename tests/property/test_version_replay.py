"""Property (ENG-9): whatever parcels do under version 1, whatever they do
after version 2 is installed, and whenever `migrate` runs in between, `check`
replays the log to exactly the stored entities (states, data, chart version),
and no entity is left stepping on a version other than the one it is pinned to."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from engine import ChartSet, Engine, FakeClock
from engine.replay import check
from engine.settings import EngineSettings
from engine.store.sqlite import SQLiteStore
from engine.version_migration import plan_moves, publish_moves
from tests.fixtures.versioned_parcel import V1, package

V1_ONLY = ChartSet.load([package(V1)])
BOTH = ChartSet.load([package()])
QUIET = EngineSettings(run_timers=False, run_outbox=False)

EVENTS = st.one_of(
    st.tuples(
        st.just("parcel.pack"), st.fixed_dictionaries({"weight_kg": st.sampled_from([0.1, 2.5])})
    ),
    st.tuples(
        st.just("parcel.ship"),
        st.fixed_dictionaries({"tracking_number": st.sampled_from([None, "", "TN"])}),
    ),
    st.tuples(st.sampled_from(["parcel.deliver", "parcel.cancel"]), st.just({})),
    st.tuples(st.just("parcel.note"), st.fixed_dictionaries({"text": st.text(max_size=3)})),
)
STEPS = st.lists(st.tuples(st.integers(1, 3), EVENTS), max_size=8)


async def run_story(
    db: Path, before: list[Any], after: list[Any], migrate_at: int, second_migrate: bool
) -> None:
    clock = FakeClock()
    counter = iter(range(10_000))

    async def play(charts: ChartSet, steps: list[Any]) -> None:
        engine = await Engine.open(db, charts=charts, clock=clock, settings=QUIET)
        try:
            for number, (event_type, payload) in steps:
                clock.advance(1)
                await engine.publish(
                    {
                        "event_id": f"e{next(counter)}",
                        "type": event_type,
                        "source": "test",
                        "entity": f"parcel:{number}",
                        "payload": payload,
                    }
                )
        finally:
            await engine.stop()

    async def migrate() -> None:
        engine = await Engine.open(db, charts=BOTH, clock=clock, settings=QUIET)
        try:
            await publish_moves(engine, await plan_moves(engine.store, BOTH))
        finally:
            await engine.stop()

    await play(V1_ONLY, before)
    await play(BOTH, after[:migrate_at])
    await migrate()
    await play(BOTH, after[migrate_at:])
    if second_migrate:
        await migrate()


def examine_story(
    story: tuple[list[Any], list[Any], int, bool],
    examine: Callable[[SQLiteStore], Awaitable[None]],
) -> None:
    """Play ``story`` (`run_story`'s arguments) on a fresh file, then ``examine``
    the database read-only."""

    async def scenario() -> None:
        with tempfile.TemporaryDirectory() as directory:
            db = Path(directory) / "story.db"
            await run_story(db, *story)
            store = await SQLiteStore.open_readonly(db)
            try:
                await examine(store)
            finally:
                await store.close()

    asyncio.run(scenario())


@settings(max_examples=12, deadline=None)
@given(STEPS, STEPS, st.integers(0, 8), st.booleans())
def test_check_replays_any_story_across_versions_and_migrations(
    before: list[Any], after: list[Any], migrate_at: int, second_migrate: bool
) -> None:
    async def examine(store: SQLiteStore) -> None:
        result = await check(store, BOTH)
        assert result.divergence is None, result.divergence.describe()
        entities = await store.entities()
        assert {e.key: e.chart_version for e in entities} == {
            key: state.chart_version for key, state in result.entities.items()
        }
        # Migrate ran after the first story: nothing made before it is left on v1.
        assert all(e.chart_version == 2 for e in entities)

    examine_story((before, after, migrate_at, second_migrate), examine)
