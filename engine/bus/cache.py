"""The bus's cache of entity states."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

from engine.step import EntityState


class EntityCache:
    """The newest state of recently used entities (read or stepped), oldest first.

    A state stepped but not yet committed is pinned: it exists nowhere else,
    so eviction passes it by until its commit lands. When a commit fails,
    `forget` drops every state (some were built on what was not written) and
    starts a new ``epoch``: batches stepped in an older epoch must not be
    committed, and entities are read again from the store."""

    __slots__ = ("_pinned", "_states", "epoch", "size")

    def __init__(self, size: int) -> None:
        self.size = size
        self.epoch = 0
        self._states: OrderedDict[str, EntityState] = OrderedDict()
        self._pinned: dict[str, int] = {}  # key -> steps of it not yet committed

    def __len__(self) -> int:
        return len(self._states)

    def __contains__(self, key: str) -> bool:
        return key in self._states

    def __getitem__(self, key: str) -> EntityState:
        return self._states[key]

    def get(self, key: str) -> EntityState | None:
        return self._states.get(key)

    def missing(self, keys: Iterable[str]) -> list[str]:
        """The keys among ``keys`` that are not cached, each once."""
        states = self._states
        return list({key for key in keys if key not in states})

    def load(self, key: str, state: EntityState) -> None:
        """Cache ``state`` as read from the store, unless a newer one is cached."""
        if key not in self._states:
            self._states[key] = state

    def stepped(self, key: str, state: EntityState) -> None:
        """``state`` is the entity's newest, pinned until `committed`."""
        self._states[key] = state
        self._states.move_to_end(key)
        self._pinned[key] = self._pinned.get(key, 0) + 1

    def committed(self, keys: Iterable[str]) -> None:
        """The steps that made ``keys`` (one key per step) are durable."""
        pinned = self._pinned
        for key in keys:
            left = pinned.get(key, 0) - 1
            if left <= 0:
                pinned.pop(key, None)
            else:
                pinned[key] = left

    def pinned(self) -> int:
        """How many cached states are not yet durable."""
        return len(self._pinned)

    def forget(self) -> None:
        """Drop every state and start a new epoch."""
        self.epoch += 1
        self._states.clear()
        self._pinned.clear()

    def evict(self) -> None:
        """Drop the least recently used durable states until at most
        ``size`` are cached (pinned states stay, even above ``size``). Pinned
        states were stepped lately, so they sit at the recent end and the scan
        from the old end seldom passes many."""
        excess = len(self._states) - self.size
        if excess <= 0:
            return
        victims: list[str] = []
        for key in self._states:
            if key not in self._pinned:
                victims.append(key)
                if len(victims) == excess:
                    break
        for key in victims:
            del self._states[key]
