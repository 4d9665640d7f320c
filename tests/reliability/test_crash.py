"""ENG-2/ENG-6/ENG-7 under SIGKILL: nothing acknowledged is lost, timers survive."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from engine import ChartSet, Engine, FakeClock
from engine.replay import check
from engine.sample import chart_package
from engine.settings import EngineSettings
from tests.reliability.crash_child import FRESH_PARCELS

ROOT = Path(__file__).resolve().parents[2]


def run_and_kill(db: Path, start: int, count: int, kill_after: int) -> dict[str, str]:
    """Start the child, SIGKILL it after ``kill_after`` acknowledgements."""
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.reliability.crash_child", str(db), str(start), str(count)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    acked: dict[str, str] = {}
    assert child.stdout is not None
    for line in child.stdout:
        if line.startswith("ACK "):
            _, event_id, outcome = line.split()
            acked[event_id] = outcome
            if len(acked) >= kill_after:
                child.send_signal(signal.SIGKILL)
                break
    child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL, "the child was killed mid-stream"
    return acked


async def test_eng2_eng7_sigkill_after_publish_loses_nothing_and_timers_still_fire(tmp_path):
    """ENG-2, ENG-7: sigkill after publish loses nothing and timers still fire."""
    db = tmp_path / "crash.db"
    charts = ChartSet.load([chart_package()])
    acknowledged: dict[str, str] = {}
    for round_, kill_after in enumerate((700, 1300, 450)):
        acknowledged |= run_and_kill(db, round_ * 5000, 5000, kill_after)

        clock = FakeClock(start=4_000_000_000)  # long after every timer's due time
        engine = await Engine.open(
            db,
            charts=charts,
            clock=clock,
            settings=EngineSettings(run_timers=False, run_outbox=False),
        )
        try:
            rows = await engine.store.fetchall("SELECT event_id, outcome FROM events")
            logged = dict(rows)
            missing = [e for e in acknowledged if e not in logged]
            assert not missing, f"acknowledged but lost: {missing[:5]}"
            assert all(logged[e] == o for e, o in acknowledged.items() if o != "duplicate")
            report = await check(engine.store, charts)
            assert report.divergence is None, report.divergence.describe()
        finally:
            await engine.stop()

    acknowledged |= run_and_kill(db, FRESH_PARCELS, 2000, 300)
    engine = await Engine.open(
        db, charts=charts, clock=clock, settings=EngineSettings(run_timers=False, run_outbox=False)
    )
    try:
        logged = {row[0] for row in await engine.store.fetchall("SELECT event_id FROM events")}
        assert set(acknowledged) <= logged
        packed = [e.key for e in await engine.entities(state="packed")]
        armed = {entity for entity, *_ in await engine.store.timers()}
        assert len(packed) >= 300 and set(packed) == armed, (
            "every packed parcel still has its timer"
        )
        assert await engine.fire_due_timers() == len(packed)
        assert not await engine.entities(state="packed"), "armed timers fired after the restarts"
        assert {e.key for e in await engine.entities(state="overdue")} >= set(packed)
    finally:
        await engine.stop()
