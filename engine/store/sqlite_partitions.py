"""The log and the entities of one share of the entity keys, read without asyncio.

A parallel replay (engine.replay_parallel) runs one process per share; each
opens its own read-only connection here and reads only the rows of its own
entities, in sequence order. A key's share is what the caller's ``route``
says (the replay uses the bus's route, `PartitionRouter`), so every event of
one entity is read by one process.

The log's keys are routed once each: the distinct keys come from the
``(entity, seq)`` index, this share's go into a temporary table, and the scan
of the log keeps a row when its key is in that table, a lookup SQLite makes in
C. (A SQL function called for every row cost about 1.3 us a row in each
process, 8% of a replayed event's time with two processes.) The entities'
table, read once for `check`, is filtered by the route itself: an entity
stored without events in the log belongs to a share too.

All of a worker's reads run in one read transaction: the log up to the bound
and the stored entities are one snapshot, whatever a writer does meanwhile.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator

from engine.step import EntityState
from engine.store.identity import check_identity, read_only_uri, unreadable
from engine.store.rows import ENTITY_COLUMNS, EVENT_COLUMNS, LogRow, entity_of

_EVENT_LIST = ", ".join(EVENT_COLUMNS)
# Rows fetched from SQLite at a time: replay's batch (decisions/replay-in-batches.md).
BATCH = 10_000


class ShareReader:
    """One worker's read-only view: the rows of the keys ``route`` sends to ``share``."""

    def __init__(self, path: str, share: int, route: Callable[[str], int]) -> None:
        check_identity(path, allow_new=False)
        try:
            self._db = sqlite3.connect(read_only_uri(path), uri=True, isolation_level=None)
        except sqlite3.DatabaseError as error:
            raise unreadable(path, error) from None
        # Not ``query_only``: it refuses the temporary table too; ``mode=ro``
        # already refuses every write to the file.
        self._db.execute("PRAGMA busy_timeout=5000")
        # SQLite calls this for every row it scans; only this share's rows
        # become Python tuples.
        self._db.create_function(
            "channelsync_mine", 1, lambda key: route(key) == share, deterministic=True
        )
        self._db.execute("BEGIN")
        self._route, self._share = route, share

    def log_batches(self, until_seq: int) -> Iterator[list[LogRow]]:
        """This share's events with ``seq <= until_seq``, in sequence order."""
        db = self._db
        db.execute(
            "CREATE TEMP TABLE IF NOT EXISTS share_keys (key TEXT PRIMARY KEY) WITHOUT ROWID"
        )
        db.execute("DELETE FROM share_keys")
        keys = db.execute("SELECT DISTINCT entity FROM events WHERE seq <= ?", (until_seq,))
        route, share = self._route, self._share
        db.executemany(
            "INSERT INTO share_keys VALUES (?)", ((k,) for (k,) in keys if route(k) == share)
        )
        # NOT INDEXED: along the rowid, so the rows come in seq order unsorted.
        cursor = db.execute(
            f"SELECT {_EVENT_LIST} FROM events NOT INDEXED"
            " WHERE seq <= ? AND entity IN share_keys ORDER BY seq",
            (until_seq,),
        )
        while rows := cursor.fetchmany(BATCH):
            yield rows

    def entities(self) -> Iterator[EntityState]:
        """This share's stored entities, by key."""
        cursor = self._db.execute(
            f"SELECT {ENTITY_COLUMNS} FROM entities WHERE channelsync_mine(key) ORDER BY key"
        )
        while rows := cursor.fetchmany(BATCH):
            yield from (entity_of(row) for row in rows)

    def close(self) -> None:
        self._db.close()


def log_bound(path: str, until_seq: int | None, until_time: float | None) -> int:
    """The last seq a replay up to ``until_seq`` / ``until_time`` steps: a replay
    stops at the first event, in sequence order, past either bound (0: none)."""
    check_identity(path, allow_new=False)
    db = sqlite3.connect(read_only_uri(path), uri=True, isolation_level=None)
    try:
        (last,) = db.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()
        bound = int(last) if until_seq is None else min(int(last), until_seq)
        if until_time is not None:
            (cut,) = db.execute(
                "SELECT MIN(seq) FROM events WHERE COALESCE(received_at, 0) > ?", (until_time,)
            ).fetchone()
            if cut is not None:
                bound = min(bound, int(cut) - 1)
        return bound
    finally:
        db.close()


__all__ = ["BATCH", "ShareReader", "log_bound"]
