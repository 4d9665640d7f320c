"""Replay in parallel processes agrees with the single-process replay (issue 18).

For any small log (a few entities, awkward keys, equal and rising times,
events an entity's state ignores), with or without a tampered outcome, a
tampered stored entity or an event of a chart that is not installed, and with
or without a bound: the same final states, the same count, the same
divergence, the same error, in 2 or 3 processes.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from engine import Engine, FakeClock
from engine.chartset import ChartSet
from engine.replay import ReplayError, check, replay
from engine.replay_parallel import EVENTS_PER_JOB, check_parallel, default_jobs, replay_parallel
from engine.settings import EngineSettings
from engine.store.sqlite import SQLiteStore
from tests.parcel_model import EVENT_TYPES, payload_for

# Keys at the edges: short, long, non-ASCII, look-alikes.
KEYS = ["parcel:1", "parcel:2", "parcel:ü", "parcel:" + "9" * 120, "parcel:1_", "parcel:a:b"]

steps = st.lists(
    st.tuples(
        st.sampled_from(KEYS),
        st.sampled_from(EVENT_TYPES),
        st.integers(0, 7),
        st.sampled_from([0.0, 0.0, 1.0, 60.0]),  # clock advance: often none (equal times)
    ),
    min_size=1,
    max_size=30,
)
tampering = st.sampled_from(["none", "outcome", "stored", "unknown chart", "bad payload"])


async def _build_log(path: Path, charts: ChartSet, log: list[tuple[str, str, int, float]]) -> None:
    clock = FakeClock()
    engine = await Engine.open(
        path,
        charts=charts,
        clock=clock,
        settings=EngineSettings(run_timers=False, run_outbox=False, synchronous="OFF"),
    )
    try:
        for n, (key, event_type, variant, advance) in enumerate(log):
            clock.advance(advance)
            await engine.publish(
                engine.make_event(
                    event_type, key, payload_for(event_type, variant), event_id=f"e{n}"
                )
            )
    finally:
        await engine.stop()


def _tamper(path: Path, how: str, at: int) -> None:
    """Change the file as a bug or a hand would: what both replays must see alike."""
    with sqlite3.connect(path) as db:
        seqs = [seq for (seq,) in db.execute("SELECT seq FROM events ORDER BY seq")]
        seq = seqs[at % len(seqs)]
        if how == "outcome":
            db.execute(
                "UPDATE events SET to_state = 'cancelled', outcome = 'transitioned' WHERE seq = ?",
                (seq,),
            )
        elif how == "stored":
            db.execute(
                "UPDATE entities SET state = 'shipped' WHERE key = (SELECT MIN(key) FROM entities)"
            )
        elif how == "unknown chart":
            db.execute(
                "UPDATE events SET entity = 'crate:1', type = 'crate.open' WHERE seq = ?", (seq,)
            )
        elif how == "bad payload":
            db.execute(
                "UPDATE events SET payload = '{\"weight_kg\": \"heavy\"}', type = 'parcel.pack'"
                " WHERE seq = ?",
                (seq,),
            )


async def _single(path: Path, charts: ChartSet, **bounds: Any) -> Any:
    store = await SQLiteStore.open_readonly(path)
    try:
        if bounds.pop("checking", False):
            return await check(store, charts)
        return await replay(store, charts, **bounds)
    finally:
        await store.close()


def _outcome(run: Any) -> tuple[Any, ...]:
    """What a replay produced, or the error it raised."""
    try:
        result = run()
    except ReplayError as error:
        return ("error", type(error).__name__, str(error))
    return ("result", result.events, result.entities, result.divergence)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    log=steps,
    how=tampering,
    at=st.integers(0, 40),
    jobs=st.sampled_from([2, 3]),
    until=st.one_of(st.none(), st.integers(0, 35), st.floats(0, 600)),
    compare=st.booleans(),
)
# Found by this property: the single-process replay read the first row past
# ``until`` before stopping, and failed on it when it was unreadable.
@example(
    log=[("parcel:1", "parcel.pack", 0, 0.0)],
    how="unknown chart",
    at=0,
    jobs=2,
    until=0,
    compare=False,
)
def test_a_parallel_replay_and_check_give_what_the_single_process_ones_give(
    sample_charts: ChartSet, log: list[Any], how: str, at: int, jobs: int, until: Any, compare: bool
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "log.db"
        asyncio.run(_build_log(path, sample_charts, log))
        _tamper(path, how, at)
        bounds: dict[str, Any] = {"compare": compare}
        if isinstance(until, int):
            bounds["until_seq"] = until
        elif isinstance(until, float):
            bounds["until_time"] = until
        single = _outcome(lambda: asyncio.run(_single(path, sample_charts, **bounds)))
        parallel = _outcome(lambda: replay_parallel(path, sample_charts, jobs=jobs, **bounds))
        assert parallel == single
        single_check = _outcome(lambda: asyncio.run(_single(path, sample_charts, checking=True)))
        parallel_check = _outcome(
            lambda: check_parallel(path, sample_charts, jobs=jobs, keep_states=True)
        )
        assert parallel_check == single_check


async def test_each_process_replays_its_own_share_and_reports_its_memory(
    db_path: Path, sample_charts: ChartSet
) -> None:
    log = [(f"parcel:{n}", "parcel.pack", n, 0.0) for n in range(40)]
    await _build_log(db_path, sample_charts, log)
    result = await asyncio.to_thread(replay_parallel, db_path, sample_charts, jobs=2)
    assert [s.share for s in result.shares] == [0, 1]
    assert all(s.events > 0 for s in result.shares)  # both did work
    assert sum(s.events for s in result.shares) == result.events == 40
    assert sum(s.entity_count for s in result.shares) == len(result.entities) == 40
    assert all(s.peak_rss_mb > 0 and s.private_mb > 0 for s in result.shares)


async def test_without_keeping_states_only_the_counts_come_back(
    db_path: Path, sample_charts: ChartSet
) -> None:
    await _build_log(db_path, sample_charts, [("parcel:1", "parcel.pack", 1, 0.0)])
    result = await asyncio.to_thread(
        replay_parallel, db_path, sample_charts, jobs=2, keep_states=False
    )
    assert result.events == 1 and result.entities == {}
    assert sum(s.entity_count for s in result.shares) == 1


@pytest.mark.parametrize("jobs", [1, 2])
async def test_an_empty_log_replays_to_nothing(
    db_path: Path, sample_charts: ChartSet, jobs: int
) -> None:
    await _build_log(db_path, sample_charts, [])
    result = await asyncio.to_thread(check_parallel, db_path, sample_charts, jobs=jobs)
    assert (result.events, result.entities, result.divergence) == (0, {}, None)


def test_a_small_log_is_replayed_by_one_process_a_large_one_by_every_core() -> None:
    cores = len(os.sched_getaffinity(0))
    assert default_jobs(0) == default_jobs(EVENTS_PER_JOB - 1) == 1
    assert default_jobs(2 * EVENTS_PER_JOB) == min(2, cores)
    assert default_jobs(10**9) == cores
