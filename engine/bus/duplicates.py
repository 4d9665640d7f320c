"""Exact duplicate detection across the bus's partitions (ENG-2)."""

from __future__ import annotations

from collections.abc import Iterable


class DuplicateGuard:
    """Decides, for each event id, whether it is new or a duplicate.

    One event id may be sent for two entities, so two partitions can hold the
    same id at once. A worker reads which of its batch's ids the store already
    holds, then steps the batch synchronously (atomic between workers); an id
    it applies is claimed until its commit lands, so no other worker applies it
    meanwhile. A commit that lands while a read is in flight may be invisible
    to that read, so each commit's ids are kept, by generation, for as long as
    a read that started before it is outstanding.
    """

    __slots__ = ("_claimed", "_generation", "_next_read", "_reads", "_recent")

    def __init__(self) -> None:
        self._claimed: set[str] = set()
        self._generation = 0  # commits so far
        self._reads: dict[int, int] = {}  # read -> the generation it started in
        self._next_read = 0
        self._recent: list[tuple[int, set[str]]] = []  # (generation, ids it committed)

    def start_read(self) -> int:
        """Open a read of the store; the ticket to pass to `finish_read`."""
        self._next_read += 1
        self._reads[self._next_read] = self._generation
        return self._next_read

    def finish_read(self, ticket: int) -> set[str]:
        """Close a read: the ids committed since it started, which it may not
        have seen. Claim with them before any ``await`` (a later commit would
        release its ids unrecorded)."""
        started = self._reads.pop(ticket)
        missed: set[str] = set()
        for generation, ids in self._recent:
            if generation > started:
                missed |= ids
        self._prune()
        return missed

    def claim(self, event_id: str, known: set[str]) -> bool:
        """Whether ``event_id`` is new and now claimed; False for a duplicate:
        ``known`` (stored, as read and finished) or claimed by another step."""
        if event_id in known or event_id in self._claimed:
            return False
        self._claimed.add(event_id)
        return True

    def release(self, event_ids: Iterable[str]) -> None:
        """The claims of ids that were not committed: they may come again."""
        self._claimed.difference_update(event_ids)

    def committed(self, event_ids: list[str]) -> None:
        """``event_ids`` are durable: the store answers for them from now on."""
        self._generation += 1
        if self._reads:  # only reads already in flight need to hear of them
            self._recent.append((self._generation, set(event_ids)))
            self._prune()
        self._claimed.difference_update(event_ids)

    def _prune(self) -> None:
        """Forget committed ids that every outstanding read can already see."""
        oldest = min(self._reads.values(), default=self._generation)
        recent = self._recent
        while recent and recent[0][0] <= oldest:
            recent.pop(0)
