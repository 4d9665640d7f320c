"""Partition leases in PostgreSQL: which worker owns which partition, until when.

Every worker of a cluster shares three tables with the others (created by
`ensure_tables`, idempotent and safe to race):

- ``cluster_workers``: one row a live worker (id, host, pid, when it started,
  its last heartbeat and when that heartbeat runs out);
- ``partition_leases``: one row a partition (owner, epoch, expires_at); the
  epoch grows by one at every acquisition and never goes back, so a commit
  that carries the epoch it was started under can tell whether its owner
  still holds the partition (the fence, `engine.cluster.fence`);
- ``partition_offsets``: one row a partition, the last JetStream sequence of
  the partition's subject whose event is committed;

and the fence's check, the function ``channelsync_fence`` (`FENCE_FUNCTION`).

A worker's round (`Leases.round`) runs in one transaction on the database's
clock (``now()``), never the worker's: it heartbeats, renews the leases it
still holds, counts the live workers, and takes free or expired partitions up
to its fair share (``ceil(partitions / live workers)``). A worker above its
share is asked to give the excess back (`LeasePlan.release`) and does so with
`Leases.release` once its work on them is committed; nobody takes a live
lease from another worker (docs/scaling.md, "Leases and fencing").
"""

from __future__ import annotations

import math
import os
import socket
import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import psycopg

from engine.cluster.partitions import PARTITIONS
from engine.logs import get_logger

log = get_logger("channelsync.cluster.leases")

# How long a lease (and a worker's heartbeat) lasts without renewal; a worker
# renews every third of it, so one missed round never costs a lease.
DEFAULT_LEASE_TTL = 10.0

# The SQLSTATE of the fence's refusal (a class of no PostgreSQL error).
LEASE_LOST = "CSL01"

# Serialises the tables' creation between workers starting together:
# concurrent CREATE TABLE IF NOT EXISTS can still collide in pg_type.
_SCHEMA_LOCK = 0x636C7573  # "clus"

# The fence's check (engine.cluster.fence), one statement of a commit's
# pipeline: it raises, rolling the commit back, when a partition's lease is no
# longer held by ``worker`` at its epoch or has expired by the server's clock;
# the lease rows stay locked FOR SHARE until the commit ends, so a takeover
# waits for it. The error's detail is a JSON object: partition -> why.
FENCE_FUNCTION = f"""CREATE OR REPLACE FUNCTION channelsync_fence(
        worker text, parts integer[], epochs bigint[]) RETURNS void
    LANGUAGE plpgsql AS $$
    DECLARE lost jsonb;
    BEGIN
        SELECT jsonb_object_agg(checked.partition, checked.why) INTO lost FROM (
            SELECT l.partition, CASE
                WHEN l.owner IS DISTINCT FROM worker OR l.epoch <> m.epoch THEN format(
                    'owner %s at epoch %s, not epoch %s', l.owner, l.epoch, m.epoch)
                WHEN l.expires_at <= clock_timestamp() THEN format(
                    'lease at epoch %s expired', l.epoch)
                END AS why
            FROM partition_leases l JOIN unnest(parts, epochs) AS m(partition, epoch)
                ON m.partition = l.partition
            ORDER BY l.partition FOR SHARE OF l
        ) checked WHERE checked.why IS NOT NULL;
        IF lost IS NOT NULL THEN
            RAISE EXCEPTION 'lease lost' USING ERRCODE = '{LEASE_LOST}', DETAIL = lost::text;
        END IF;
    END $$"""

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS cluster_workers (
        worker_id text PRIMARY KEY,
        host text NOT NULL,
        pid integer NOT NULL,
        started_at timestamptz NOT NULL DEFAULT now(),
        heartbeat_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS partition_leases (
        partition integer PRIMARY KEY,
        owner text,
        epoch bigint NOT NULL DEFAULT 0,
        expires_at timestamptz NOT NULL DEFAULT '-infinity'
    )""",
    """CREATE TABLE IF NOT EXISTS partition_offsets (
        partition integer PRIMARY KEY,
        stream_seq bigint NOT NULL DEFAULT 0
    )""",
    FENCE_FUNCTION,
)


def frozen_safe_url(url: str, idle_timeout: float) -> str:
    """``url`` with its sessions ended by PostgreSQL once a transaction sits
    idle for ``idle_timeout`` seconds. A worker frozen mid-transaction
    (SIGSTOP, a swap storm) would otherwise keep its locks (row locks, the
    outbox's claim lock) and stall every other worker behind them; its
    leases run out meanwhile, so its work is taken over, not lost."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    option = f"-c idle_in_transaction_session_timeout={max(1, int(idle_timeout * 1000))}"
    options = [value for key, value in query if key == "options"]
    rest = [(key, value) for key, value in query if key != "options"]
    rest.append(("options", " ".join([*options, option])))
    return urlunsplit(parts._replace(query=urlencode(rest, quote_via=quote)))


def new_worker_id() -> str:
    """A worker id unique across hosts and restarts: host, pid and a random tail."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


async def ensure_tables(conn: psycopg.AsyncConnection[Any], partitions: int = PARTITIONS) -> None:
    """Create the cluster's tables and one lease row per partition (if missing)."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
        for statement in SCHEMA:
            await conn.execute(statement)
        await conn.execute(
            "INSERT INTO partition_leases (partition) SELECT g FROM generate_series(0, %s) g"
            " ON CONFLICT DO NOTHING",
            (partitions - 1,),
        )


@dataclass(frozen=True)
class LeasePlan:
    """The outcome of one round: what this worker holds now (partition ->
    epoch), what it took this round, what it lost (expired before it could
    renew them) and what it should give back to make room for others."""

    held: Mapping[int, int]
    acquired: Mapping[int, int] = field(default_factory=dict)
    lost: frozenset[int] = frozenset()
    release: tuple[int, ...] = ()
    workers: int = 1


def fair_share(partitions: int, workers: int) -> int:
    """The most partitions one of ``workers`` live workers should own."""
    return math.ceil(partitions / max(1, workers))


class Leases:
    """One worker's side of the lease tables, over its own connection."""

    def __init__(
        self,
        conn: psycopg.AsyncConnection[Any],
        worker_id: str | None = None,
        *,
        ttl: float = DEFAULT_LEASE_TTL,
        partitions: int = PARTITIONS,
    ) -> None:
        if ttl <= 0:
            raise ValueError(f"the lease ttl must be > 0 seconds, not {ttl!r}")
        self.conn = conn
        self.worker_id = worker_id or new_worker_id()
        self.ttl = ttl
        self.partitions = partitions
        self.held: dict[int, int] = {}
        self.url: str | None = None  # set by `connect`: what `reconnect_if_broken` reopens

    @classmethod
    async def connect(
        cls, url: str, worker_id: str | None = None, *, create: bool = True, **kwargs: Any
    ) -> Leases:
        """A worker's lease connection (`frozen_safe_url`: half a lease).
        ``create=False`` leaves the tables to `ensure_tables`, called once the
        engine's store made its own: it refuses a database holding others'."""
        ttl = kwargs.get("ttl", DEFAULT_LEASE_TTL)
        conn = await psycopg.AsyncConnection.connect(frozen_safe_url(url, ttl / 2))
        try:
            if create:
                await ensure_tables(conn, kwargs.get("partitions", PARTITIONS))
        except BaseException:
            await conn.close()
            raise
        leases = cls(conn, worker_id, **kwargs)
        leases.url = url
        return leases

    async def reconnect_if_broken(self) -> bool:
        """Open a new connection if the server ended this one (a frozen
        worker's session is ended by its idle timeout); whether it did."""
        if not (self.conn.broken or self.conn.closed) or self.url is None:
            return False
        await self.conn.close()
        self.conn = await psycopg.AsyncConnection.connect(frozen_safe_url(self.url, self.ttl / 2))
        log.warning("lease connection reopened", worker=self.worker_id)
        return True

    async def close(self) -> None:
        await self.conn.close()

    async def round(self, *, want: bool = True) -> LeasePlan:
        """Heartbeat, renew, and (with ``want``) take free or expired partitions
        up to the fair share; one transaction on the database's clock."""
        ttl = self.ttl
        async with self.conn.transaction():
            await self.conn.execute(
                "INSERT INTO cluster_workers (worker_id, host, pid, expires_at)"
                " VALUES (%s, %s, %s, now() + make_interval(secs => %s))"
                " ON CONFLICT (worker_id) DO UPDATE SET heartbeat_at = now(),"
                " expires_at = EXCLUDED.expires_at",
                (self.worker_id, socket.gethostname(), os.getpid(), ttl),
            )
            # Gone workers' rows only skew the share: anyone may clear them.
            await self.conn.execute(
                "DELETE FROM cluster_workers WHERE worker_id IN (SELECT worker_id"
                " FROM cluster_workers WHERE expires_at < now() FOR UPDATE SKIP LOCKED)"
            )
            cur = await self.conn.execute(
                "UPDATE partition_leases SET expires_at = now() + make_interval(secs => %s)"
                " WHERE owner = %s AND expires_at > now() RETURNING partition, epoch",
                (ttl, self.worker_id),
            )
            renewed = {int(p): int(e) for p, e in await cur.fetchall()}
            cur = await self.conn.execute(
                "SELECT count(*) FROM cluster_workers WHERE expires_at > now()"
            )
            row = await cur.fetchone()
            workers = int(row[0]) if row else 1
            share = fair_share(self.partitions, workers)
            acquired: dict[int, int] = {}
            if want and len(renewed) < share:
                acquired = await self._acquire(share - len(renewed))
        lost = frozenset(p for p in self.held if p not in renewed)
        self.held = {**renewed, **acquired}
        release = tuple(sorted(renewed)[share:]) if len(renewed) > share else ()
        plan = LeasePlan(dict(self.held), acquired, lost, release, workers)
        if acquired or lost or release:
            log.info(
                "leases changed",
                worker=self.worker_id,
                held=len(self.held),
                acquired=sorted(acquired),
                lost=sorted(lost),
                release=list(release),
                workers=workers,
            )
        return plan

    async def _acquire(self, count: int) -> dict[int, int]:
        """Take up to ``count`` free or expired partitions, bumping each epoch.
        SKIP LOCKED: a row another worker is taking, or a commit is fencing
        against (FOR SHARE), is passed by, never waited for."""
        cur = await self.conn.execute(
            "UPDATE partition_leases SET owner = %s, epoch = epoch + 1,"
            " expires_at = now() + make_interval(secs => %s)"
            " WHERE partition IN (SELECT partition FROM partition_leases"
            "   WHERE owner IS NULL OR expires_at <= now()"
            "   ORDER BY (owner IS NOT NULL), partition LIMIT %s FOR UPDATE SKIP LOCKED)"
            " RETURNING partition, epoch",
            (self.worker_id, self.ttl, count),
        )
        return {int(p): int(e) for p, e in await cur.fetchall()}

    async def release(self, partitions: Collection[int]) -> None:
        """Give ``partitions`` back at once (their work committed): free for
        the next worker's round, with no wait for the lease to run out."""
        if not partitions:
            return
        async with self.conn.transaction():
            await self.conn.execute(
                "UPDATE partition_leases SET owner = NULL, expires_at = now()"
                " WHERE owner = %s AND partition = ANY(%s)",
                (self.worker_id, list(partitions)),
            )
        for partition in partitions:
            self.held.pop(partition, None)
        log.info("leases released", worker=self.worker_id, partitions=sorted(partitions))

    async def leave(self) -> None:
        """Release every lease and remove this worker: a clean shutdown."""
        await self.release(list(self.held))
        async with self.conn.transaction():
            await self.conn.execute(
                "DELETE FROM cluster_workers WHERE worker_id = %s", (self.worker_id,)
            )

    async def offsets(self, partitions: Collection[int]) -> dict[int, int]:
        """The stored stream sequence of each of ``partitions`` (0: none yet)."""
        async with self.conn.transaction():
            cur = await self.conn.execute(
                "SELECT partition, stream_seq FROM partition_offsets WHERE partition = ANY(%s)",
                (list(partitions),),
            )
            found = {int(p): int(s) for p, s in await cur.fetchall()}
        return {partition: found.get(partition, 0) for partition in partitions}


__all__ = [
    "DEFAULT_LEASE_TTL",
    "LEASE_LOST",
    "LeasePlan",
    "Leases",
    "ensure_tables",
    "fair_share",
    "frozen_safe_url",
    "new_worker_id",
]
