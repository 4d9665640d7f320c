"""WAL checkpoints run in the background, off the commit path (engine.store.checkpoint)."""

from __future__ import annotations

import shutil
import sqlite3

from engine import Engine
from engine.settings import EngineSettings


async def test_eng2_committed_events_reach_the_database_file_without_a_commit_waiting(
    db_path, clock, sample_charts, tmp_path
):
    """ENG-2: shortly after commits the background checkpointer copies the WAL
    into the database file itself: a copy of the .db file alone holds every
    event, though no commit ran a checkpoint (the writer's own threshold,
    50,000 pages, is far from reached)."""
    engine = await Engine.open(
        db_path,
        charts=sample_charts,
        clock=clock,
        settings=EngineSettings(run_timers=False, run_outbox=False),
    )
    try:
        await engine.publish_many(
            engine.make_event("parcel.note", f"parcel:{n}", {"text": "x"}, event_id=f"c{n}")
            for n in range(300)
        )
        checkpointer = engine.store._checkpointer
        assert checkpointer is not None
        await checkpointer.wait()
        assert checkpointer.checkpoints >= 1
        copy = tmp_path / "file-only.db"
        shutil.copyfile(db_path, copy)  # the main file, without its -wal
        with sqlite3.connect(copy) as conn:
            assert conn.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 300
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        await engine.stop()
