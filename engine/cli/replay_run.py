"""What `channelsync replay` runs (engine/cli/replay_cmd.py holds its options)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.chartset import ChartSet
from engine.cli.common import (
    fail,
    format_time,
    load_charts,
    open_existing,
    out,
    print_json,
    print_table,
    progress,
)
from engine.cli.inspect_cmd import describe
from engine.gc_tuning import tune_gc
from engine.logfile import (
    LogFileError,
    NoBase,
    logged_events_from_file,
    read_base,
    read_header,
)
from engine.replay import LoggedEvent, ReplayError, logged_events, replay, replay_steps, what_if
from engine.replay_parallel import default_jobs, replay_parallel
from engine.step import EntityState
from engine.store.protocol import Store
from engine.vault import present_entity

TIMELINE = ["seq", "time", "event", "change", "commands"]


@dataclass
class _Replay:
    """One `replay` invocation: where the log comes from and what to show."""

    charts: ChartSet
    log_file: Path | None
    entity: str | None
    until_seq: int | None
    until_time: float | None
    as_json: bool
    # A file that starts mid-log starts from the states at its cut.
    base: dict[str, EntityState] = field(default_factory=dict)
    store: Store | None = None
    # The log's length, once the replay is left to worker processes.
    total: int | None = None

    def source(self) -> AsyncIterator[LoggedEvent]:
        if self.store is not None:
            return logged_events(self.store, self.charts, entity=self.entity)
        assert self.log_file is not None
        return logged_events_from_file(self.log_file, self.charts)


def run_replay(
    log_file: Path | None,
    db: Path | str | None,
    entity: str | None,
    until_seq: int | None,
    until_time: float | None,
    charts_dir: Path | None,
    as_json: bool,
    jobs: int | None = None,
) -> None:
    """Replay a file or a database (exactly one of ``log_file`` and ``db``, a
    SQLite file or a PostgreSQL URL). The final states of a whole SQLite
    database (``--json``, no entity, no other charts) are rebuilt in ``jobs``
    processes (default: one per core); a PostgreSQL database in this one."""
    base, since = _read_start(log_file)
    if until_seq is not None and until_seq < since:
        raise fail(f"{log_file} starts after seq {since}: --until must be {since} or later", 2)
    job = _Replay(load_charts(charts_dir), log_file, entity, until_seq, until_time, as_json, base)
    tune_gc()

    async def run() -> None:
        job.store = await open_existing(db) if db is not None else None
        try:
            if charts_dir is not None:
                await _what_if(job)
            elif as_json and job.store is not None:
                total = await job.store.count("events")
                if isinstance(db, Path) and entity is None and (jobs or default_jobs(total)) > 1:
                    job.total = total  # the workers read the file themselves
                else:
                    await _replay_store_json(job, job.store)
            else:
                await _replay_timelines(job)
        finally:
            if job.store is not None:
                await job.store.close()

    try:
        asyncio.run(run())
        if job.total is not None and isinstance(db, Path):
            _replay_in_processes(job, db, jobs or default_jobs(job.total))
    except LogFileError as error:
        raise fail(str(error)) from None
    except ReplayError as error:
        raise fail(str(error), 2) from None


def _read_start(log_file: Path | None) -> tuple[dict[str, EntityState], int]:
    """The states a log file starts from and the seq it starts after (none for --db)."""
    if log_file is None:
        return {}, 0
    try:
        return read_base(log_file), int(read_header(log_file).get("since_seq") or 0)
    except NoBase as error:
        raise fail(str(error), 2) from None
    except LogFileError as error:
        raise fail(str(error)) from None


def _states_json(states: dict[str, EntityState]) -> list[dict[str, Any]]:
    # Shown as `state --json` shows them: sealed values as markers (SEC-3).
    return [present_entity(states[key].as_dict(), states[key].data) for key in sorted(states)]


def _replay_in_processes(job: _Replay, db: Path, workers: int) -> None:
    with progress(job.total, "replaying") as advance:
        result = replay_parallel(
            db,
            job.charts,
            jobs=workers,
            until_seq=job.until_seq,
            until_time=job.until_time,
            progress=advance,
        )
    print_json(_states_json(result.entities))


async def _replay_store_json(job: _Replay, store: Store) -> None:
    with progress(await store.count("events"), "replaying") as advance:
        result = await replay(
            store,
            job.charts,
            entity=job.entity,
            until_seq=job.until_seq,
            until_time=job.until_time,
            progress=advance,
        )
    print_json(_states_json(result.entities))


async def _replay_timelines(job: _Replay) -> None:
    """Replay step by step; print each entity's timeline (or, as JSON, the states)."""
    states = {key: s for key, s in job.base.items() if job.entity in (None, key)}
    timelines: dict[str, list[dict[str, str]]] = {}
    total = await job.store.count("events") if job.store is not None else None
    with progress(total, "replaying") as advance:
        steps = replay_steps(
            job.source(),
            job.charts,
            states,
            entity=job.entity,
            until_seq=job.until_seq,
            until_time=job.until_time,
        )
        async for replayed in steps:
            advance()
            if not job.as_json:
                logged, result = replayed.logged, replayed.result
                change = (
                    f"{result.from_state} -> {result.to_state}"
                    if result.to_state
                    else f"{result.outcome.value}: {result.reason}"
                )
                timelines.setdefault(logged.event.entity, []).append(
                    {
                        "seq": str(logged.seq),
                        "time": format_time(logged.event.received_at),
                        "event": logged.event.type,
                        "change": change,
                        "commands": ", ".join(c.type for c in result.commands),
                    }
                )
    if job.as_json:
        print_json(_states_json(states))
        return
    for key in sorted(timelines):
        final = states.get(key)
        out.print(f"[bold]{key}[/bold]  final state: {final.state if final else '(unchanged)'}")
        print_table("", timelines[key], TIMELINE)


async def _what_if(job: _Replay) -> None:
    count, differences = await what_if(job.source(), job.charts, entity=job.entity, base=job.base)
    if job.as_json:
        print_json(
            [
                {
                    "entity": d.entity,
                    "first_seq": d.first_seq,
                    "first_event_id": d.first_event_id,
                    "state_before": d.state_before,
                    "recorded": d.recorded,
                    "recomputed": d.recomputed,
                    "differing_events": d.differing_events,
                    "final_recorded": d.final_recorded,
                    "final_what_if": d.final_what_if,
                }
                for d in differences
            ]
        )
        return
    out.print(
        f"replayed {count} events under the new charts: "
        f"{len(differences)} entit{'y' if len(differences) == 1 else 'ies'} would differ",
        highlight=False,
    )
    print_table(
        "What would change",
        [
            {
                "entity": d.entity,
                "first event": f"{d.first_seq} {d.first_event_id}",
                "recorded": describe(d.recorded),
                "with the new charts": describe(d.recomputed),
                "final": f"{d.final_recorded} -> {d.final_what_if}",
            }
            for d in differences
        ],
        ["entity", "first event", "recorded", "with the new charts", "final"],
    )
