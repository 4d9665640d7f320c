"""What `channelsync workers` shows: live workers, leases and offsets.

Read-only: a report never creates the cluster's tables (`NoCluster` when a
database has none), since the engine's store refuses to open a database that
holds tables other than its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg


@dataclass(frozen=True)
class LeaseRow:
    """One partition as `channelsync workers` shows it."""

    partition: int
    owner: str | None
    epoch: int
    expires_in: float | None  # seconds, by the database's clock; None: never held
    live: bool
    stream_seq: int


class NoCluster(LookupError):
    """The database has no cluster tables: no worker has ever run on it."""


async def _report_rows(conn: psycopg.AsyncConnection[Any], query: str) -> list[tuple[Any, ...]]:
    """The rows of one of the operators' reports; `NoCluster` without the
    tables (a report never creates them)."""
    async with conn.transaction():
        cur = await conn.execute("SELECT to_regclass('partition_leases')")
        row = await cur.fetchone()
        if row is None or row[0] is None:
            raise NoCluster("no cluster worker has run on this database (no partition_leases)")
        cur = await conn.execute(query)
        return await cur.fetchall()


async def lease_table(conn: psycopg.AsyncConnection[Any]) -> list[LeaseRow]:
    """Every partition's lease and offset, by partition."""
    rows = await _report_rows(
        conn,
        "SELECT l.partition, l.owner, l.epoch,"
        " CASE WHEN l.expires_at = '-infinity' THEN NULL"
        "   ELSE extract(epoch FROM l.expires_at - now()) END,"
        " l.owner IS NOT NULL AND l.expires_at > now(), coalesce(o.stream_seq, 0)"
        " FROM partition_leases l LEFT JOIN partition_offsets o USING (partition)"
        " ORDER BY l.partition",
    )
    return [
        LeaseRow(
            int(p), owner, int(epoch), None if left is None else float(left), bool(live), int(s)
        )
        for p, owner, epoch, left, live, s in rows
    ]


@dataclass(frozen=True)
class WorkerRow:
    """One live worker: where it runs, since when, and its heartbeat's age."""

    worker_id: str
    host: str
    pid: int
    started_at: float  # Unix seconds
    heartbeat_age: float  # seconds since its last round, by the database's clock


async def live_workers(conn: psycopg.AsyncConnection[Any]) -> list[WorkerRow]:
    """The workers whose heartbeat has not run out, by id."""
    rows = await _report_rows(
        conn,
        "SELECT worker_id, host, pid, extract(epoch FROM started_at),"
        " extract(epoch FROM now() - heartbeat_at)"
        " FROM cluster_workers WHERE expires_at > now() ORDER BY worker_id",
    )
    return [WorkerRow(w, h, int(p), float(s), float(age)) for w, h, p, s, age in rows]


__all__ = ["LeaseRow", "NoCluster", "WorkerRow", "lease_table", "live_workers"]
