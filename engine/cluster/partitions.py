"""Which logical partition an entity belongs to.

The entity space is cut into a fixed number of partitions (`PARTITIONS`); a
worker owns whole partitions, so every event of one entity goes through one
owner, in order. The hash must be the same in every process and on every
machine, for as long as a log lives: Python's ``hash`` of a string is salted
per process, so it is blake2b of the key's UTF-8 bytes, the first eight bytes
read as an unsigned big-endian integer, modulo the count.
"""

from __future__ import annotations

import hashlib

# Fixed for the life of a deployment: changing it moves entities between
# partitions, and with them their ordering guarantee (docs/scaling.md).
PARTITIONS = 256


def partition_of(entity: str, partitions: int = PARTITIONS) -> int:
    """The partition of the entity key ``entity`` (0 <= result < ``partitions``)."""
    if partitions < 1:
        raise ValueError(f"partitions must be at least 1, not {partitions}")
    digest = hashlib.blake2b(entity.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % partitions


__all__ = ["PARTITIONS", "partition_of"]
