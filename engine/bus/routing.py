"""Which partition (and so which worker) applies an entity's events."""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from typing import Protocol, TypeVar


class _Keyed(Protocol):
    @property
    def entity(self) -> str: ...


T = TypeVar("T", bound=_Keyed)


class PartitionRouter:
    """Routes every event of one entity to the same partition, so that one
    worker applies them in arrival order (ENG-4) while the others apply other
    entities' events.

    The route is a checksum of the key, not ``hash()``: ``hash`` is salted per
    process, and a debugging session should be able to repeat a run exactly."""

    __slots__ = ("partitions",)

    def __init__(self, partitions: int) -> None:
        self.partitions = max(1, partitions)

    def partition_of(self, entity: str) -> int:
        # ``surrogatepass``: any str routes, even one no event could carry
        # (a lone surrogate), and every other key encodes exactly as UTF-8.
        return zlib.crc32(entity.encode("utf-8", "surrogatepass")) % self.partitions

    def split(self, events: Iterable[T]) -> list[list[T]]:
        """``events`` by partition, each list in the order given."""
        by_partition: list[list[T]] = [[] for _ in range(self.partitions)]
        for event in events:
            by_partition[self.partition_of(event.entity)].append(event)
        return by_partition
