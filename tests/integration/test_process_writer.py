"""The writer in a child process (Engine.open(writer="process"), serve's default)."""

from __future__ import annotations

import os
import signal

import pytest

from engine import Engine
from engine.replay import check
from engine.settings import EngineSettings
from engine.store.sqlite import StoreError


async def _open_with_process_writer(db_path, clock, charts) -> Engine:
    return await Engine.open(
        db_path,
        charts=charts,
        clock=clock,
        settings=EngineSettings(run_timers=False, run_outbox=False, writer="process"),
    )


def _events(engine: Engine) -> list:
    make = engine.make_event
    events = []
    for n in range(400):
        key = f"parcel:{n % 50}"
        if n < 50:
            events.append(make("parcel.pack", key, {"weight_kg": 1.0}, event_id=f"p{n}"))
        elif n % 7 == 0:
            events.append(make("parcel.ship", key, {"tracking_number": f"T{n}"}, event_id=f"s{n}"))
        else:
            events.append(make("parcel.note", key, {"text": str(n)}, event_id=f"n{n}"))
    events.append(make("parcel.note", "parcel:1", {"text": "again"}, event_id="n51"))  # a repeat
    return events


async def test_eng2_eng6_the_process_writer_stores_exactly_what_the_thread_writer_does(
    tmp_path, clock, sample_charts
):
    """ENG-2/ENG-6: the same events through both writers give the same log
    outcomes, entities, outbox commands and timers, and `check` agrees."""
    stored = {}
    for kind in ("thread", "process"):
        engine = await Engine.open(
            tmp_path / f"{kind}.db",
            charts=sample_charts,
            clock=clock,
            settings=EngineSettings(run_timers=False, run_outbox=False, writer=kind),
        )
        try:
            receipts = await engine.publish_many(_events(engine))
            report = await check(engine.store, sample_charts)
            assert report.divergence is None
            stored[kind] = (
                [(r.event_id, r.outcome, r.seq, r.to_state) for r in receipts],
                [e.as_dict() for e in await engine.entities()],
                await engine.store.fetchall("SELECT entity, command, idempotency_key FROM outbox"),
                await engine.store.timers(),
            )
        finally:
            await engine.stop()
    assert stored["process"] == stored["thread"]
    assert ("n51", "duplicate") in [(r[0], r[1]) for r in stored["process"][0]]


async def test_eng2_a_dead_writer_process_fails_publishes_and_loses_nothing_acknowledged(
    db_path, clock, sample_charts
):
    """ENG-2: if the writer process dies, a publish fails (it is not
    acknowledged) instead of hanging, and everything acknowledged before is in
    the database when it is opened again."""
    engine = await _open_with_process_writer(db_path, clock, sample_charts)
    acknowledged = await engine.publish_many(_events(engine)[:100])
    child = engine.store._writer._process
    assert engine.store.writer_pid == child.pid  # what a host watches
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=10)
    with pytest.raises(StoreError, match="writer process"):
        await engine.publish(
            engine.make_event("parcel.note", "parcel:3", {"text": "x"}, event_id="after")
        )
    await engine.stop()

    reopened = await _open_with_process_writer(db_path, clock, sample_charts)
    try:
        assert await reopened.store.count("events") == len(acknowledged) == 100
        assert await reopened.store.known_event_ids(["after"]) == set()
    finally:
        await reopened.stop()


async def test_an_unknown_writer_is_a_clear_error(db_path, sample_charts):
    with pytest.raises(ValueError, match="'thread' or 'process'"):
        await Engine.open(db_path, charts=sample_charts, settings=EngineSettings(writer="fork"))


async def test_only_a_writer_process_has_a_pid(tmp_path, clock, sample_charts):
    for kind in ("thread", "process"):
        engine = await Engine.open(
            tmp_path / f"{kind}.db",
            charts=sample_charts,
            clock=clock,
            settings=EngineSettings(writer=kind),
        )
        try:
            pid = engine.store.writer_pid
            if kind == "thread":
                assert pid is None
            else:
                assert pid is not None and pid != os.getpid()
                os.kill(pid, 0)  # alive
        finally:
            await engine.stop()


async def test_a_cancelled_write_does_not_hand_its_reply_to_the_next(tmp_path):
    """A caller cancelled while the child works (a publish whose task is
    cancelled) must not leave its reply in the channel, where the next
    request would read it as its own."""
    import asyncio

    from engine.store.process_writer import ProcessWriter

    writer = ProcessWriter(str(tmp_path / "cancel.db"))
    await writer.open(())
    try:
        await writer.execute("CREATE TABLE t (x)")
        slow = asyncio.create_task(
            writer.execute(
                "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c"
                " WHERE x < 2000000) SELECT count(*) FROM c"
            )
        )
        await asyncio.sleep(0.02)
        slow.cancel()
        assert await writer.execute("INSERT INTO t VALUES (1), (2), (3)") == 3
        assert await writer.execute("DELETE FROM t WHERE x > 1") == 2
    finally:
        await writer.close()


async def test_a_writer_process_imports_what_it_runs_before_it_answers(db_path):
    """Unpickling a function imports its module: a child that imported the
    batch writer only at the first commit kept that commit, and every publish
    queued behind it, waiting 0.2-0.4 s for the engine's import. The child of
    a store, and of its restart, has them already when the store is open."""
    from engine.store.sqlite import SQLiteStore
    from tests.integration.writer_probe import loaded

    modules = ["engine.store.sqlite_batch", "engine.store.outbox_sql", "engine.store.rows"]
    store = await SQLiteStore.open(db_path, writer="process")
    try:
        for _ in range(2):  # the first child, then the one a restart starts
            writer = store.writer
            assert writer is not None and writer.pid is not None
            assert await writer.run(loaded, modules) == modules
            os.kill(writer.pid, signal.SIGKILL)
            await writer.wait_gone()
            await store.restart_writer()
    finally:
        await store.close()
