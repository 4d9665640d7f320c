"""Conformance of a `Store` for chart versions (ENG-9): each logged event keeps
the version of the chart that applied it, each entity the version it is
pinned to and its compound states' history (part of
`engine.testing.store_conformance`)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.step import EntityState
from engine.store.protocol import Store
from engine.store.rows import EVENT_COLUMNS, EventRow
from engine.testing.store_builders import StoreCase, batch, event_row

_VERSION = EVENT_COLUMNS.index("chart_version")
_STATE_IDS = st.sampled_from(["sync.failed", "sync.synced", "review.editing.draft", "a_b"])
_HISTORY = st.none() | st.dictionaries(
    st.sampled_from(["sync", "review", "review.editing"]),
    st.lists(_STATE_IDS, min_size=1, max_size=3),
    max_size=3,
)


def versioned_row(
    entity: str,
    event_id: str,
    chart_version: int,
    *,
    history: dict[str, list[str]] | None = None,
    state: str = "open",
    version: int = 1,
    moved: bool = True,
) -> EventRow:
    """`event_row` applied by ``chart_version``, leaving the entity on it."""
    row = event_row(entity, event_id, state=state, version=version, moved=moved)
    assert row.entity_after is not None
    row.chart_version = chart_version
    row.entity_after.chart_version = chart_version
    row.entity_after.history = history
    return row


class VersionConformance(StoreCase):
    async def test_each_logged_event_keeps_the_version_that_applied_it(self, store: Store) -> None:
        await store.commit(
            batch([versioned_row("order:1", "a", 1), versioned_row("order:2", "b", 3)])
        )
        await store.commit(batch([versioned_row("order:1", "c", 2, version=2)]))
        logged = {row[1]: row[_VERSION] async for row in store.iter_events()}
        assert logged == {"a": 1, "b": 3, "c": 2}
        history = await store.history("order:1")
        assert [(h["event_id"], h["chart_version"]) for h in history] == [("a", 1), ("c", 2)]

    async def test_an_entity_stays_on_its_version_until_a_step_moves_it(self, store: Store) -> None:
        await store.commit(batch([versioned_row("order:1", "a", 1)]))
        # A step that leaves the state alone (moved=False) still keeps the version.
        await store.commit(batch([versioned_row("order:1", "b", 1, version=2, moved=False)]))
        first = await store.entity("order:1")
        assert first is not None and first.chart_version == 1
        await store.commit(batch([versioned_row("order:1", "c", 2, version=3, moved=False)]))
        moved = await store.entity("order:1")
        assert moved is not None and (moved.chart_version, moved.version) == (2, 3)
        assert [e.chart_version for e in await store.entities(chart=moved.chart)] == [2]

    def test_history_and_version_read_back_as_written(self) -> None:
        @given(
            st.lists(st.tuples(st.integers(1, 5), _HISTORY, st.booleans()), min_size=1, max_size=6)
        )
        @settings(max_examples=type(self).examples, deadline=None)
        def check(steps: list[tuple[int, dict[str, list[str]] | None, bool]]) -> None:
            async def work(store: Store) -> tuple[EntityState | None, list[EntityState]]:
                for number, (chart_version, history, moved) in enumerate(steps, 1):
                    row = versioned_row(
                        "order:1",
                        f"e{number}",
                        chart_version,
                        history=history,
                        version=number,
                        moved=moved or number == 1,
                    )
                    await store.commit(batch([row]))
                loaded = await store.load_entities(["order:1"])
                return loaded.get("order:1"), await store.entities()

            entity, listed = self.with_store(work)
            chart_version, history, _moved = steps[-1]
            assert entity is not None
            # An empty history is stored as none: there is nothing to remember.
            assert (entity.chart_version, entity.history) == (chart_version, history or None)
            assert [(e.chart_version, e.history) for e in listed] == [
                (chart_version, history or None)
            ]

        check()


__all__ = ["VersionConformance", "versioned_row"]
