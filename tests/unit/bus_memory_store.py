"""An in-memory store for the bus's unit tests: the three methods the bus
uses (`engine.bus.BusStore`), with pauses that let reads and commits of
several workers interleave, and commits that can be made to fail."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator, Sequence
from itertools import cycle

from pydantic_core import from_json, to_json

from engine.step import EntityState
from engine.store.sqlite import Batch, DuplicateRow, EventRow


class MemoryStore:
    """Commits apply atomically after a pause; reads look at the store after
    a pause and return after another, as a read on its own connection would.
    ``pauses``: how many times each of those pauses yields to the loop, in
    turn (drawn by a test to vary the interleaving)."""

    def __init__(self, pauses: Sequence[int] = (0,)) -> None:
        self.events: dict[str, EventRow] = {}
        self.duplicates: list[DuplicateRow] = []
        self.entities: dict[str, tuple[str, str, bytes, int]] = {}
        self.commits = 0
        self.fail_commits: set[int] = set()  # numbers (from 1) of the commits that fail
        self._pauses: Iterator[int] = cycle(pauses or (0,))
        self._attempts = 0

    async def _pause(self) -> None:
        for _ in range(next(self._pauses)):
            await asyncio.sleep(0)

    async def known_event_ids(self, event_ids: Sequence[str]) -> set[str]:
        await self._pause()
        found = {event_id for event_id in event_ids if event_id in self.events}
        await self._pause()
        return found

    async def load_entities(self, keys: Sequence[str]) -> dict[str, EntityState]:
        await self._pause()
        found = {
            key: EntityState(key, chart, state, from_json(data), version)
            for key in keys
            if key in self.entities
            for chart, state, data, version in [self.entities[key]]
        }
        await self._pause()
        return found

    async def commit(self, batch: Batch, timers_fired: Sequence[str] = ()) -> None:
        await self._pause()
        self._attempts += 1
        if self._attempts in self.fail_commits:
            raise sqlite3.OperationalError("disk I/O error")
        self.commits += 1
        for row in batch.events:
            row.seq = len(self.events) + 1
            self.events[row.event_id] = row
            after = row.entity_after
            if after is not None:
                data = row.data_json.encode() if row.data_json is not None else to_json(after.data)
                self.entities[row.entity] = (after.chart, after.state, data, after.version)
        self.duplicates.extend(batch.duplicates)

    def entity(self, key: str) -> EntityState | None:
        if key not in self.entities:
            return None
        chart, state, data, version = self.entities[key]
        return EntityState(key, chart, state, from_json(data), version)
