"""Replay on every core: the entity keys cut into shares, one process each (issue 18).

Replay is bound by the CPU of one process (decoding each row, stepping it).
An entity's story depends on its own events only, so the log can be cut by
entity key: each worker process reads the rows of its share of the keys
(`engine.store.sqlite_partitions`, the bus's CRC-32 route), in sequence
order, and steps them with the same `LogStepper` as `engine.replay.replay`.
Memory per process follows the entities of its share.

The result is the single-process replay's (tests/property/test_replay_parallel.py
holds them equal): the same states, the same count of events, the same
divergence, the same error. Where the single-process replay stops at the first
divergence or unreadable event in sequence order, each worker reports its own
first one and the parent keeps the earliest; for a divergence it then replays
again up to that event, so the states and the count are those of a replay
stopped there (a second pass only when `check` fails).

The workers are forked, so they inherit the loaded charts (a chart package's
guards and actions are code, not data to send). Where the platform cannot
fork, the work runs in this process, one share after the other.
"""

from __future__ import annotations

import multiprocessing
import os
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from engine.bus.routing import PartitionRouter
from engine.chartset import ChartSet
from engine.log_reader import ReplayError
from engine.replay import (
    Divergence,
    ReplayedStep,
    ReplayResult,
    divergence_of,
    entity_difference,
)
from engine.replay_stepper import LogStepper
from engine.step import EntityState
from engine.store.sqlite_partitions import ShareReader, log_bound

# Below this many events per process, forking costs more than it saves.
EVENTS_PER_JOB = 10_000


def default_jobs(events: int) -> int:
    """Processes for a log of ``events``: one per core this process may run
    on, but no more than one per `EVENTS_PER_JOB` events."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, events // EVENTS_PER_JOB))


@dataclass(slots=True)
class ShareReport:
    """What one worker found in its share of the keys."""

    share: int
    events: int = 0
    entity_count: int = 0
    entities: dict[str, EntityState] | None = None
    # The first event, by seq, that diverged or could not be replayed.
    stop_seq: int | None = None
    divergence: Divergence | None = None
    error: ReplayError | None = None
    stored_difference: Divergence | None = None
    peak_rss_mb: float = 0.0
    private_mb: float = 0.0


@dataclass(slots=True)
class ParallelReplayResult(ReplayResult):
    """A replay's result, with what each process did and the memory it took."""

    shares: list[ShareReport] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Job:
    """One pass over the log, as every worker runs it."""

    path: str
    charts: ChartSet
    shares: int
    bound: int
    compare: bool
    check_stored: bool
    keep_states: bool


def replay_parallel(
    path: str | Path,
    charts: ChartSet,
    *,
    jobs: int,
    until_seq: int | None = None,
    until_time: float | None = None,
    compare: bool = False,
    keep_states: bool = True,
    progress: Callable[[int], None] | None = None,
) -> ParallelReplayResult:
    """`engine.replay.replay` of the SQLite database at ``path`` in ``jobs``
    processes. ``keep_states=False`` leaves ``entities`` empty (the workers do
    not send them back): for a caller that wants the counts and the verdict."""
    path = str(path)
    job = _Job(
        path,
        charts,
        max(1, jobs),
        log_bound(path, until_seq, until_time),
        compare,
        False,
        keep_states,
    )
    return _finish(job, _run(job, progress))


def check_parallel(
    path: str | Path,
    charts: ChartSet,
    *,
    jobs: int,
    keep_states: bool = False,
    progress: Callable[[int], None] | None = None,
) -> ParallelReplayResult:
    """`engine.replay.check` in ``jobs`` processes: each worker compares the
    outcomes of its share's events, then its share's stored entities. Without
    ``keep_states`` the rebuilt states stay in the workers."""
    path = str(path)
    job = _Job(path, charts, max(1, jobs), log_bound(path, None, None), True, True, keep_states)
    return _finish(job, _run(job, progress))


def _finish(job: _Job, reports: list[ShareReport]) -> ParallelReplayResult:
    """The single-process replay's result from the shares' reports."""
    stops = [r for r in reports if r.stop_seq is not None]
    first = min(stops, key=lambda r: r.stop_seq or 0, default=None)
    if first is not None:
        if first.error is not None:
            raise first.error
        # The states and count of a replay that stopped at this divergence.
        again = _Job(
            job.path, job.charts, job.shares, first.stop_seq or 0, False, False, job.keep_states
        )
        result = _merged(_run(again, None))
        result.divergence = first.divergence
        return result
    result = _merged(reports)
    differences = [r.stored_difference for r in reports if r.stored_difference is not None]
    result.divergence = min(differences, key=lambda d: d.entity, default=None)
    return result


def _merged(reports: list[ShareReport]) -> ParallelReplayResult:
    result = ParallelReplayResult(shares=sorted(reports, key=lambda r: r.share))
    for report in result.shares:
        result.events += report.events
        if report.entities is not None:
            result.entities.update(report.entities)
            report.entities = None
    return result


def _run(job: _Job, progress: Callable[[int], None] | None) -> list[ShareReport]:
    """Every share's report: from forked workers, or in turn here without fork."""
    advance = progress or (lambda _n: None)
    if job.shares == 1 or "fork" not in multiprocessing.get_all_start_methods():
        return [_replay_share(job, share, advance) for share in range(job.shares)]
    context = multiprocessing.get_context("fork")
    workers: dict[Connection, Any] = {}
    try:
        for share in range(job.shares):
            receiver, sender = context.Pipe(duplex=False)
            worker = context.Process(
                target=_worker, args=(sender, job, share), name=f"channelsync-replay-{share}"
            )
            worker.start()
            sender.close()
            workers[receiver] = worker
        return _collect(workers, advance)
    finally:
        for receiver, worker in workers.items():
            if worker.is_alive():
                worker.terminate()
            worker.join()
            receiver.close()


def _collect(workers: dict[Connection, Any], advance: Callable[[int], None]) -> list[ShareReport]:
    reports: list[ShareReport] = []
    waiting = set(workers)
    while waiting:
        for receiver in wait(list(waiting)):
            assert isinstance(receiver, Connection)
            try:
                kind, value = receiver.recv()
            except EOFError:
                workers[receiver].join()
                raise RuntimeError(
                    f"replay worker {workers[receiver].name} ended without a report"
                    f" (exit code {workers[receiver].exitcode})"
                ) from None
            if kind == "progress":
                advance(value)
            elif kind == "failed":
                raise RuntimeError(f"replay worker {workers[receiver].name} failed:\n{value}")
            else:
                reports.append(value)
                waiting.discard(receiver)
    return reports


def _worker(sender: Connection, job: _Job, share: int) -> None:
    """A forked process's whole life: one share, its report, exit."""
    try:
        sender.send(("done", _replay_share(job, share, lambda n: sender.send(("progress", n)))))
    except BaseException:
        sender.send(("failed", traceback.format_exc()))
    finally:
        sender.close()


def _replay_share(job: _Job, share: int, advance: Callable[[int], None]) -> ShareReport:
    """Step the events of one share of the keys, as `engine.replay.replay` does."""
    report = ShareReport(share)
    states: dict[str, EntityState] = {}
    stepper = LogStepper(job.charts, states, None, None, None, False)
    reader = ShareReader(job.path, share, PartitionRouter(job.shares).partition_of)
    try:
        for rows in reader.log_batches(job.bound):
            advance(len(rows))
            try:
                diverged = stepper.run(rows, job.compare)
            except ReplayError as error:
                report.stop_seq, report.error = stepper.stopped_at, error
                return _done(report, states, job, stepper)
            if diverged is not None:
                report.stop_seq = diverged[0].seq
                report.divergence = divergence_of(ReplayedStep(*diverged))
                return _done(report, states, job, stepper)
        if job.check_stored:
            stored = {entity.key: entity for entity in reader.entities()}
            report.stored_difference = entity_difference(states, stored)
    finally:
        reader.close()
    return _done(report, states, job, stepper)


def _done(
    report: ShareReport, states: dict[str, EntityState], job: _Job, stepper: LogStepper
) -> ShareReport:
    report.events = stepper.events
    report.entity_count = len(states)
    if job.keep_states:
        report.entities = states
    report.peak_rss_mb, report.private_mb = memory_mb()
    return report


def memory_mb() -> tuple[float, float]:
    """This process's peak resident memory and the memory it does not share
    (with the parent it was forked from, say), in MB; zeros where /proc is not."""
    peak = private = 0.0
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    peak = int(line.split()[1]) / 1024
        with open("/proc/self/smaps_rollup") as rollup:
            for line in rollup:
                if line.startswith(("Private_Clean:", "Private_Dirty:")):
                    private += int(line.split()[1]) / 1024
    except OSError:
        pass
    return peak, private


__all__ = [
    "EVENTS_PER_JOB",
    "ParallelReplayResult",
    "ShareReport",
    "check_parallel",
    "default_jobs",
    "memory_mb",
    "replay_parallel",
]
