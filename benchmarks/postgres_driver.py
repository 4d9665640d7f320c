"""PostgreSQL drivers on the append path, A/B in one run.

    python -m benchmarks.postgres_driver [--batch 1000] [--rounds 7] [--url postgresql://...]

One commit as the engine makes it: ``--batch`` events appended to the log and
as many entity upserts (keys drawn from 20,000, so most are updates after the
first rounds), in one transaction. The ways of writing it take turns round by
round on one fresh database (so load on the machine hits them alike):

- ``psycopg json``: what `PostgresStore` does: one INSERT ... SELECT FROM
  json_populate_recordset(one JSON parameter) a table (`engine.store.postgres_batch`);
- ``psycopg unnest``: one INSERT ... SELECT FROM unnest(a typed array a column);
- ``psycopg unnest binary``: the same, parameters sent in binary;
- ``psycopg executemany``: a statement a row, sent in psycopg's pipeline mode;
- ``asyncpg executemany``: the same rows through asyncpg's executemany;
- ``asyncpg unnest``: the unnest statements through asyncpg.

Prints events/s per way (median of the rounds), their ratio to the first,
and the client's CPU an event (what a worker process pays);
docs/decisions/postgres-driver.md keeps the figures and the choice. asyncpg
is not a dependency: install it in the venv to run this (``pip install asyncpg``).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from collections.abc import Awaitable, Callable

import psycopg

from engine.step import EntityState
from engine.store.postgres import PostgresStore
from engine.store.postgres_batch import write_rows
from engine.store.rows import Batch, EventRow, dumps
from engine.store.sqlite_batch import EVENT_LIST, BatchRows, batch_rows
from engine.testing.services import DEFAULT_POSTGRES, fresh_database

KEYS = 20_000
_ENTITY_COLUMNS = (
    "key, kind, chart, state, data, version, last_seq, updated_at, chart_version, history"
)
_UPSERT = (
    " ON CONFLICT (key) DO UPDATE SET chart = excluded.chart, state = excluded.state,"
    " data = excluded.data, version = excluded.version, last_seq = excluded.last_seq,"
    " updated_at = excluded.updated_at, chart_version = excluded.chart_version,"
    " history = excluded.history"
)
Writer = Callable[[BatchRows], Awaitable[None]]
event_types = "int8 text text text text text float8 float8 text text text text text int4"
entity_types = "text text text text text int4 int8 float8 int4 text"


def unnest(table: str, names: str, types: str, mark: str, tail: str = "") -> str:
    """INSERT ... SELECT FROM unnest(an array a column); ``mark``: ``%s`` or ``$`` (asyncpg)."""
    kinds = types.split()
    arrays = ", ".join(
        (f"%s::{kind}[]" if mark == "%s" else f"${n + 1}::{kind}[]") for n, kind in enumerate(kinds)
    )
    return f"INSERT INTO {table} ({names}) SELECT * FROM unnest({arrays}){tail}"


def columns(rows: list[tuple[object, ...]]) -> list[list[object]]:
    return [list(column) for column in zip(*rows, strict=True)]


def make_batch(round_no: int, size: int, start_seq: int) -> BatchRows:
    rng = random.Random(round_no)
    events = []
    for n in range(size):
        key = f"order:{rng.randrange(KEYS)}"
        data = {"status": "AWAITING_SHIPMENT", "update_time": round_no * size + n}
        row = EventRow(
            event_id=f"bench-{round_no}-{n}",
            type="order.updated",
            source="bench",
            entity=key,
            chart="order",
            occurred_at=None,
            received_at=1_700_000_000.0 + n,
            payload=dumps({"order_id": key, "update_time": n}),
            outcome="transitioned",
            from_state="paid",
            to_state="awaiting_shipment",
            reason=None,
            entity_after=EntityState(key, "order", "awaiting_shipment", data, n + 1),
            data_json=dumps(data),
            seq=start_seq + n,
        )
        events.append(row)
    return batch_rows(Batch(events=events), ())


def _marks(count: int, start: int = 1) -> str:
    return ", ".join(f"${n}" for n in range(start, start + count))


async def _ways(url: str) -> dict[str, tuple[Writer, Callable[[], Awaitable[None]]]]:
    import asyncpg  # only here: not a dependency of channelsync

    conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
    apg = await asyncpg.connect(url)

    async def psycopg_json(rows: BatchRows) -> None:
        async with conn.transaction():
            await write_rows(conn, rows)

    async def psycopg_unnest(rows: BatchRows, binary: bool = False) -> None:
        async with conn.transaction(), conn.cursor(binary=binary) as cursor:
            await cursor.execute(
                unnest("events", EVENT_LIST, event_types, "%s"), columns(rows.events)
            )
            await cursor.execute(
                unnest("entities", _ENTITY_COLUMNS, entity_types, "%s", _UPSERT),
                columns(rows.moved_entities),
            )

    async def psycopg_binary(rows: BatchRows) -> None:
        await psycopg_unnest(rows, binary=True)

    async def psycopg_many(rows: BatchRows) -> None:
        marks = ", ".join(["%s"] * 10)
        async with conn.transaction(), conn.cursor() as cursor:
            await cursor.executemany(
                f"INSERT INTO events ({EVENT_LIST}) VALUES ({', '.join(['%s'] * 14)})",
                rows.events,
            )
            await cursor.executemany(
                f"INSERT INTO entities ({_ENTITY_COLUMNS}) VALUES ({marks}){_UPSERT}",
                rows.moved_entities,
            )

    async def asyncpg_many(rows: BatchRows) -> None:
        async with apg.transaction():
            await apg.executemany(
                f"INSERT INTO events ({EVENT_LIST}) VALUES ({_marks(14)})", rows.events
            )
            await apg.executemany(
                f"INSERT INTO entities ({_ENTITY_COLUMNS}) VALUES ({_marks(10)}){_UPSERT}",
                rows.moved_entities,
            )

    events_sql = unnest("events", EVENT_LIST, event_types, "$")
    entities_sql = unnest("entities", _ENTITY_COLUMNS, entity_types, "$", _UPSERT)

    async def asyncpg_unnest(rows: BatchRows) -> None:
        async with apg.transaction():
            await apg.execute(events_sql, *columns(rows.events))
            await apg.execute(entities_sql, *columns(rows.moved_entities))

    async def close() -> None:
        await conn.close()
        await apg.close()

    async def nothing() -> None:
        return None

    return {
        "psycopg json": (psycopg_json, close),
        "psycopg unnest": (psycopg_unnest, nothing),
        "psycopg unnest binary": (psycopg_binary, nothing),
        "psycopg executemany": (psycopg_many, nothing),
        "asyncpg executemany": (asyncpg_many, nothing),
        "asyncpg unnest": (asyncpg_unnest, nothing),
    }


async def run(url: str, size: int, rounds: int) -> dict[str, tuple[list[float], list[float]]]:
    """Per way: events/s of each round, and this process's CPU in us an event."""
    store = await PostgresStore.open(url)  # the schema the store creates
    await store.close()
    ways = await _ways(url)
    rates: dict[str, list[float]] = {name: [] for name in ways}
    cpu_us: dict[str, list[float]] = {name: [] for name in ways}
    seq = 1
    names = list(ways)
    for round_no in range(rounds + 1):  # round 0 warms up (and fills the entities)
        # Each way goes first in turn: none always follows the same neighbour.
        turn = names[round_no % len(names) :] + names[: round_no % len(names)]
        for offset, name in enumerate(turn):
            rows = make_batch(round_no * len(names) + offset, size, seq)
            seq += size
            started, cpu = time.perf_counter(), time.process_time()
            await ways[name][0](rows)
            if round_no:
                rates[name].append(size / (time.perf_counter() - started))
                cpu_us[name].append((time.process_time() - cpu) / size * 1e6)
    for _write, close in ways.values():
        await close()
    return {name: (rates[name], cpu_us[name]) for name in ways}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--url", default=DEFAULT_POSTGRES, help="a server; a database is made")
    args = parser.parse_args()
    with fresh_database(args.url) as url:
        rates = asyncio.run(run(url, args.batch, args.rounds))
    first = statistics.median(next(iter(rates.values()))[0])
    print(f"{args.batch} events + entity upserts a transaction, median of {args.rounds} rounds")
    for name, (values, cpu) in rates.items():
        median = statistics.median(values)
        print(
            f"{name:22} {median:10,.0f} events/s   {median / first:5.2f}x"
            f"   client CPU {statistics.median(cpu):5.1f} us/event"
        )


if __name__ == "__main__":
    main()
