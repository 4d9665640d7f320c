"""Rows and batches for testing a `Store`, and the base of the conformance suite.

`StoreCase` opens the store under test: a subclass gives ``factory`` (and,
to test read-only refusal, ``read_only_factory``), each an async callable that
opens a store kept in a directory it is given.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import pytest

from engine.rules import Command, TimerRequest
from engine.step import EntityState
from engine.store.protocol import Store
from engine.store.rows import Batch, DeadLetterRow, EventRow, dumps

T = TypeVar("T")

# Opens a store kept in the given directory: a new, empty one the first time,
# the same one again after it was closed.
StoreFactory = Callable[[Path], Awaitable[Store]]

CHART = "conformance"
# The command type the suite's dispatchers handle.
NOTIFY = "notify"


def event_row(
    entity: str,
    event_id: str,
    *,
    state: str = "open",
    data: dict[str, Any] | None = None,
    version: int = 1,
    commands: Sequence[Command] = (),
    timers: Sequence[TimerRequest] = (),
    received_at: float = 1000.0,
    moved: bool = True,
    payload: dict[str, Any] | None = None,
) -> EventRow:
    """An applied event that leaves ``entity`` in ``state`` with ``data``."""
    data = {} if data is None else data
    return EventRow(
        event_id=event_id,
        type=f"{entity.partition(':')[0]}.changed",
        source="conformance",
        entity=entity,
        chart=CHART,
        occurred_at=None,
        received_at=received_at,
        payload=dumps(payload or {}),
        outcome="applied",
        from_state=None,
        to_state=state,
        reason=None,
        entity_after=EntityState(entity, CHART, state, data, version),
        commands=list(commands),
        timers=list(timers),
        moved=moved,
        data_json=dumps(data),
        command_json=[dumps(dict(c.payload)) for c in commands],
    )


def command(key: str, command_type: str = NOTIFY, **payload: Any) -> Command:
    return Command(command_type, payload, key)


def dead_letter(
    source: str, digest: str, error: str, at: float, entity: str | None = None
) -> DeadLetterRow:
    return DeadLetterRow(
        at, source, entity, "raw", error, digest=digest, size=3, last_seen=at, count=1
    )


def batch(rows: Iterable[EventRow]) -> Batch:
    return Batch(events=list(rows))


class StoreCase:
    """Opens the store under test (see the module's docstring)."""

    factory: ClassVar[StoreFactory]
    read_only_factory: ClassVar[StoreFactory | None] = None
    # Examples per property: each opens a store of its own.
    examples: ClassVar[int] = 20

    @pytest.fixture
    async def store(self, tmp_path: Path) -> AsyncIterator[Store]:
        opened = await type(self).factory(tmp_path)
        try:
            yield opened
        finally:
            await opened.close()

    def with_store(self, work: Callable[[Store], Awaitable[T]]) -> T:
        """``work`` on a new store of its own (for a property's examples)."""

        async def run() -> T:
            with tempfile.TemporaryDirectory() as directory:
                opened = await type(self).factory(Path(directory))
                try:
                    return await work(opened)
                finally:
                    await opened.close()

        return asyncio.run(run())


__all__ = [
    "CHART",
    "NOTIFY",
    "StoreCase",
    "StoreFactory",
    "batch",
    "command",
    "dead_letter",
    "event_row",
]
