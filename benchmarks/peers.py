"""Ceilings and peers, measured in one run on one machine.

- raw `transitions`: triggers/s of the parcel chart on a bare Machine (no guards,
  no actions, no data), the ceiling of our step;
- our pure step on the same events, as the bus runs it (guards, actions, the
  data's JSON snapshot and encoding, timers), and beside it the step of a chart
  with three parallel regions (benchmarks/step.py);
- python-statemachine 3.x stepping the same chart;
- raw sqlite3: "append event + upsert entity", 1,000 per transaction, WAL,
  synchronous=FULL: the ceiling of durable ingest, on a minimal two-table
  schema and on the engine's own schema (same columns and indexes);
- eventsourcing (its SQLite persistence): one event per aggregate save.
"""

from __future__ import annotations

import os
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

N_STEPS = 200_000


def median_rate(run: Any, runs: int = 3) -> float:
    return statistics.median(run() for _ in range(runs))


def raw_transitions() -> float:
    from transitions import Machine

    class Model:
        pass

    states = ["created", "packed", "overdue", "shipped", "delivered", "cancelled"]
    machine = Machine(model=None, states=states, initial="packed", auto_transitions=False)
    machine.add_transition("note", ["created", "packed", "overdue", "shipped"], None)
    model = Model()
    model.state = "packed"
    trigger = machine.events["note"].trigger
    started = time.perf_counter()
    for _ in range(N_STEPS):
        trigger(model)
    return N_STEPS / (time.perf_counter() - started)


def python_statemachine() -> float:
    from statemachine import State, StateMachine

    class Parcel(StateMachine):
        created = State(initial=True)
        packed = State()
        overdue = State()
        shipped = State()
        delivered = State(final=True)
        cancelled = State(final=True)
        pack = created.to(packed)
        ship = packed.to(shipped) | overdue.to(shipped)
        deliver = shipped.to(delivered)
        cancel = created.to(cancelled) | packed.to(cancelled) | overdue.to(cancelled)
        ship_deadline = packed.to(overdue)
        note = (
            packed.to.itself(internal=True)
            | created.to.itself(internal=True)
            | overdue.to.itself(internal=True)
            | shipped.to.itself(internal=True)
        )

    machine = Parcel()
    machine.send("pack")
    count = N_STEPS // 4
    started = time.perf_counter()
    for _ in range(count):
        machine.send("note")
    return count / (time.perf_counter() - started)


def _raw_ceiling(
    schema: list[str],
    event_sql: str,
    event_row: Callable[[int], tuple[Any, ...]],
    entity_sql: str,
    entity_row: Callable[[int], tuple[Any, ...]],
    count: int,
) -> float:
    """Rows/s of "append event + upsert entity", 1,000 a transaction, WAL,
    synchronous=FULL, on a fresh file with ``schema``."""
    with tempfile.TemporaryDirectory() as folder:
        conn = sqlite3.connect(Path(folder) / "raw.db", isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        for script in schema:
            conn.executescript(script)
        started = time.perf_counter()
        for base in range(0, count, 1000):
            numbers = range(base, base + 1000)
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(event_sql, [event_row(n) for n in numbers])
            conn.executemany(entity_sql, [entity_row(n) for n in numbers])
            conn.execute("COMMIT")
        elapsed = time.perf_counter() - started
        conn.close()
    return count / elapsed


def raw_sqlite(count: int = 100_000) -> float:
    """A minimal schema: 5 and 4 columns, no secondary index but event ids."""
    payload = '{"text":"n"}'
    data = '{"weight_kg":1.0,"tracking_number":"1Z999AA10123456784"}'
    return _raw_ceiling(
        [
            "CREATE TABLE events (seq INTEGER PRIMARY KEY, event_id TEXT UNIQUE,"
            " entity TEXT, payload TEXT, outcome TEXT)",
            "CREATE TABLE entities (key TEXT PRIMARY KEY, state TEXT, data TEXT,"
            " version INTEGER) WITHOUT ROWID",
        ],
        "INSERT INTO events VALUES (?,?,?,?,?)",
        lambda n: (n, f"e{n}", f"parcel:{n % 10000}", payload, "transitioned"),
        "INSERT INTO entities VALUES (?,?,?,?) ON CONFLICT(key) DO UPDATE"
        " SET state=excluded.state, data=excluded.data, version=version+1",
        lambda n: (f"parcel:{n % 10000}", "packed", data, 1),
        count,
    )


def raw_sqlite_engine_schema(count: int = 100_000) -> float:
    """The same ceiling on the engine's own tables (its indexes: event ids
    unique, events by entity, entities by state) with rows shaped like the
    ingest benchmark's: what SQLite itself costs for exactly the engine's writes."""
    from engine.store.schema import MIGRATIONS
    from engine.store.sqlite import EVENT_COLUMNS

    payload = '{"text":"note 12345"}'
    data = '{"weight_kg":1.2,"notes":["note 10001","note 20001","note 30001"]}'
    return _raw_ceiling(
        MIGRATIONS,
        f"INSERT INTO events ({', '.join(EVENT_COLUMNS)})"
        f" VALUES ({','.join('?' * len(EVENT_COLUMNS))})",
        lambda n: (
            n + 1,
            f"peak-{n}",
            "parcel.note",
            "bench",
            f"parcel:0-{n % 10000}",
            "parcel",
            None,
            1.7e9,
            payload,
            "transitioned",
            "packed",
            "packed",
            None,
            1,  # chart_version
        ),
        "INSERT INTO entities (key, kind, chart, state, data, version, last_seq, updated_at)"
        " VALUES (?,?,?,?,?,?,?,?) ON CONFLICT(key) DO UPDATE SET chart=excluded.chart,"
        " state=excluded.state, data=excluded.data, version=excluded.version,"
        " last_seq=excluded.last_seq, updated_at=excluded.updated_at",
        lambda n: (f"parcel:0-{n % 10000}", "parcel", "parcel", "packed", data, 3, n + 1, 1.7e9),
        count,
    )


_ES_PARCEL: Any = None


def _es_parcel() -> Any:
    """The eventsourcing aggregate, defined once (its topics are registered globally)."""
    global _ES_PARCEL
    if _ES_PARCEL is None:
        from eventsourcing.domain import Aggregate, event

        class EsParcel(Aggregate):
            @event("Created")
            def __init__(self, name: str) -> None:
                self.name = name
                self.notes: list[str] = []

            @event("Noted")
            def note(self, text: str) -> None:
                self.notes.append(text)

        _ES_PARCEL = EsParcel
    return _ES_PARCEL


def eventsourcing_sqlite(count: int = 20_000) -> float:
    from eventsourcing.application import Application

    Parcel = _es_parcel()

    with tempfile.TemporaryDirectory() as folder:
        os.environ.update(
            {
                "PERSISTENCE_MODULE": "eventsourcing.sqlite",
                "SQLITE_DBNAME": str(Path(folder) / "es.db"),
            }
        )
        app = Application()
        parcels = [Parcel(f"p{n}") for n in range(100)]
        for parcel in parcels:
            app.save(parcel)
        started = time.perf_counter()
        for n in range(count):
            parcel = parcels[n % 100]
            parcel.note("n")
            app.save(parcel)
        elapsed = time.perf_counter() - started
        for key in ("PERSISTENCE_MODULE", "SQLITE_DBNAME"):
            os.environ.pop(key, None)
    return count / elapsed


def run() -> dict[str, Any]:
    from benchmarks import step

    steps = step.alternated()
    return {
        "raw_transitions_per_s": median_rate(raw_transitions),
        "engine_step_per_s": steps["flat_step_per_s"],
        "three_region_one_move_per_s": steps["three_region_one_move_per_s"],
        "three_region_step_per_s": steps["three_region_step_per_s"],
        "engine_step_cpu_per_s": steps["flat_step_cpu_per_s"],
        "three_region_one_move_cpu_per_s": steps["three_region_one_move_cpu_per_s"],
        "three_region_step_cpu_per_s": steps["three_region_step_cpu_per_s"],
        "step_runs": steps["runs"],
        "python_statemachine_per_s": median_rate(python_statemachine),
        "raw_sqlite_per_s": median_rate(raw_sqlite),
        "raw_sqlite_engine_schema_per_s": median_rate(raw_sqlite_engine_schema),
        # The peer's rate varies with fsync timing from run to run: more runs.
        "eventsourcing_per_s": median_rate(eventsourcing_sqlite, runs=5),
    }


if __name__ == "__main__":
    for name, value in run().items():
        if isinstance(value, float):
            print(f"{name:30} {value:>12,.0f}")
