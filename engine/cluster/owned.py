"""The store as one worker's timers and outbox see it: its partitions only.

A partition's timers fire, and its commands run, on the partition's owner
alone (ENG-11): a timer fired elsewhere would be refused by the fence, and a
command run by two workers would defeat its claim. The store's queries know
nothing of partitions (the hash is not something PostgreSQL computes), so the
view filters what they return:

- due timers are read with a wider limit and kept when their entity's
  partition is owned;
- due commands are claimed as the store claims them, and those of other
  partitions given back at once (`release_claim`), due again for their owner's
  next round. Each worker thus briefly holds claims on others' commands; an
  owner that meets one claimed sees it on its next round (docs/scaling.md).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from engine.cluster.partitions import partition_of
from engine.store.commands import Claimed
from engine.store.protocol import Store
from engine.store.rows import TimerRow

# How many more due timers than asked for a round reads before filtering:
# with W workers about W times as many are due in all as in one's partitions.
TIMER_WIDENING = 16


class OwnedPartitions:
    """``store``, with due timers and claimed commands limited to the
    partitions ``owns`` accepts; every other call goes to ``store`` as it is."""

    def __init__(self, store: Store, owns: Callable[[int], bool]) -> None:
        self._store = store
        self._owns = owns

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def owns_entity(self, entity: str) -> bool:
        return self._owns(partition_of(entity))

    async def due_timers(self, now: float, limit: int = 1000) -> list[TimerRow]:
        rows = await self._store.due_timers(now, limit * TIMER_WIDENING)
        return [row for row in rows if self.owns_entity(row.entity)][:limit]

    async def claim_commands(
        self, token: str, now: float, lease: float, handled: Collection[str], limit: int = 500
    ) -> list[Claimed]:
        claimed = await self._store.claim_commands(token, now, lease, handled, limit)
        mine: list[Claimed] = []
        for item in claimed:
            command = item[0]
            if self.owns_entity(command.entity):
                mine.append(item)
            else:
                await self._store.release_claim(command.id, token)
        return mine


__all__ = ["TIMER_WIDENING", "OwnedPartitions"]
