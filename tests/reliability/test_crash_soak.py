"""Crash safety under repeated SIGKILL: ENG-2, ENG-5, ENG-6, ENG-7."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine import ChartSet, Engine, FakeClock
from engine.outbox import list_commands
from engine.replay import check
from engine.sample import chart_package
from engine.settings import EngineSettings
from tests.reliability.figures import record

ROOT = Path(__file__).resolve().parents[2]


def run_child(
    db: Path, effects: Path, start: int, end: int, kill_after: int | None
) -> tuple[set[str], bool]:
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.reliability.soak_child",
            str(db),
            str(effects),
            str(start),
            str(end),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    acked: set[str] = set()
    finished = False
    assert child.stdout is not None
    for line in child.stdout:
        if line.startswith("ACK "):
            acked.add(line.split()[1])
            if kill_after is not None and len(acked) >= kill_after:
                child.send_signal(signal.SIGKILL)
                break
        elif line.startswith("DONE"):
            finished = True
    child.wait(timeout=60)
    return acked, finished


def soak(tmp_path: Path, total: int, kills: int, seed: int) -> dict[str, int]:
    rng = random.Random(seed)
    db, effects = tmp_path / "soak.db", tmp_path / "effects.log"
    acknowledged: set[str] = set()
    position = 0
    for _ in range(kills):
        if position >= total:
            break
        span = min(total - position, max(50, total // kills + rng.randrange(-200, 200)))
        acked, _ = run_child(
            db, effects, position, min(total, position + span + 300), kill_after=span
        )
        acknowledged |= acked
        # Resume at the first event not acknowledged: the ones after it may or
        # may not have been committed, and are simply sent again.
        position = next(
            (n for n in range(position, total) if f"soak-{n}" not in acknowledged), total
        )
    _acked, finished = run_child(db, effects, position, total, kill_after=None)
    acknowledged |= _acked
    assert finished, "the last run completes"
    return {"acknowledged": len(acknowledged), "db": db, "effects": effects}  # type: ignore[dict-item]


async def verify(db: Path, effects: Path, total: int) -> dict[str, int]:
    charts = ChartSet.load([chart_package()])
    engine = await Engine.open(
        db,
        charts=charts,
        clock=FakeClock(),
        settings=EngineSettings(run_timers=False, run_outbox=False),
    )
    try:
        rows = await engine.store.fetchall("SELECT event_id FROM events")
        logged = [r[0] for r in rows]
        assert len(logged) == len(set(logged)), "no event applied twice"
        assert set(logged) == {f"soak-{n}" for n in range(total)}, "no event lost"
        report = await check(engine.store, charts)
        assert report.divergence is None, report.divergence.describe()
        commands = await list_commands(engine.store)
        assert all(c.status == "done" for c in commands), "no command left behind"
        executed = effects.read_text().split() if effects.exists() else []
        keys = {c.idempotency_key for c in commands}
        assert set(executed) == keys, "every command carried out, none unknown"
        return {
            "events": len(logged),
            "commands": len(keys),
            "repeats": len(executed) - len(set(executed)),
            "duplicates": await engine.store.count("duplicates"),
        }
    finally:
        await engine.stop()


async def test_eng2_eng6_twenty_sigkills_over_twenty_thousand_events(tmp_path):
    """ENG-2, ENG-5, ENG-6: 20 SIGKILLs at random points of a 20,000-event stream
    with the outbox running. No acknowledged event lost, none applied twice,
    state equals the replay, every command carried out (a command interrupted
    between its effect and its 'done' mark repeats, under the same key)."""
    started = time.monotonic()
    outcome = soak(tmp_path, total=20_000, kills=20, seed=11)
    figures = await verify(outcome["db"], outcome["effects"], 20_000)
    record(
        "crash soak",
        f"20 kill points survived, {figures['events']} events checked, "
        f"{figures['commands']} commands carried out ({figures['repeats']} repeated under "
        f"their idempotency key), {figures['duplicates']} re-sent events recorded as "
        f"duplicates, loss 0, {time.monotonic() - started:.0f}s",
    )


@pytest.mark.slow
async def test_eng2_eng6_soak_two_hundred_sigkills(tmp_path):
    """The long version: 200 kill points over 100,000 events."""
    outcome = soak(tmp_path, total=100_000, kills=200, seed=12)
    figures = await verify(outcome["db"], outcome["effects"], 100_000)
    record("crash soak (slow)", f"200 kill points, {figures['events']} events, loss 0")
