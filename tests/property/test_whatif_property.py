"""Property: whatever parcels did under version 1, then under version 2 with
`migrate` anywhere in between, replaying an entity from any seq N under the
version that logged every one of its events from N on finds no difference,
and ends where the store says the entity is (engine.whatif)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.log_reader import logged_events
from engine.store.sqlite import SQLiteStore
from engine.upgrades import UPGRADE_EVENT
from engine.whatif import what_if
from tests.property.test_version_replay import BOTH, STEPS, examine_story


async def versions_from(store: SQLiteStore, entity: str) -> list[tuple[int, int | None]]:
    """(seq, version that applied it) of the entity's events; None for an
    upgrade that moved it (from there on, no one version logged everything)."""
    found: list[tuple[int, int | None]] = []
    async for logged in logged_events(store, BOTH, entity=entity):
        if logged.event.type != UPGRADE_EVENT:
            found.append((logged.seq, logged.chart_version))
        elif logged.outcome == "transitioned":
            found.append((logged.seq, None))
    return found


@settings(max_examples=8, deadline=None)
@given(STEPS, STEPS, st.integers(0, 8), st.booleans())
def test_the_logging_version_from_any_seq_replays_the_log_exactly(
    before: list[Any], after: list[Any], migrate_at: int, second_migrate: bool
) -> None:
    async def examine(store: SQLiteStore) -> None:
        for entity in sorted({f"parcel:{n}" for n, _event in before + after}):
            await every_start_agrees(store, entity)

    examine_story((before, after, migrate_at, second_migrate), examine)


async def every_start_agrees(store: SQLiteStore, entity: str) -> None:
    logged = await versions_from(store, entity)
    stored = await store.entity(entity)
    for from_seq in range(1, (logged[-1][0] if logged else 0) + 1):
        versions = {version for seq, version in logged if seq >= from_seq}
        if len(versions) != 1 or None in versions:
            continue  # a migrate in between: no one version logged all of it
        result = await what_if(store, BOTH, entity, from_seq=from_seq, version=versions.pop())
        assert result.first_difference is None, (entity, from_seq, result.rows)
        assert [row.seq for row in result.rows] == [s for s, _v in logged if s >= from_seq]
        assert result.final_replayed == (stored.state if stored else None), (entity, from_seq)
