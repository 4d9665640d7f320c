"""The stepper every replay shares: one logged event at a time against the
replayed states, with the chart version that applied it (engine.replay)."""

from __future__ import annotations

from collections.abc import Sequence

from engine.charts.compiled import CompiledChart
from engine.chartset import ChartSet, VersionNotInstalled
from engine.events import Event, EventRejected
from engine.log_decode import parse_logged_row as parse
from engine.log_reader import (
    ChartNotInstalled,
    ChartVersionNotInstalled,
    LoggedEvent,
    ReplayError,
    unreadable,
)
from engine.step import (
    TRANSITIONED,
    EntityState,
    Outcome,
    StepResult,
    new_entity,
    step,
    step_trusted,
)
from engine.store.rows import LogRow
from engine.upgrades import UPGRADE_EVENT, upgrade_step

# A logged event that was stepped: it, the state before it and the step's result.
Stepped = tuple[LoggedEvent, str, StepResult]


def before_end(logged: LoggedEvent, until_seq: int | None, until_time: float | None) -> bool:
    return not past_end(logged.seq, logged.event.received_at, until_seq, until_time)


def past_end(
    seq: int, received_at: float | None, until_seq: int | None, until_time: float | None
) -> bool:
    """Is an event logged at ``seq`` and ``received_at`` past a replay's ``until``?"""
    if until_seq is not None and seq > until_seq:
        return True
    return until_time is not None and (received_at or 0) > until_time


_ERROR = Outcome.ERROR.value


class End(Exception):
    """The replay reached ``until``."""


class LogStepper:
    """Steps logged events against ``states`` (the shared core of every replay)."""

    def __init__(
        self,
        charts: ChartSet,
        states: dict[str, EntityState],
        entity: str | None,
        until_seq: int | None,
        until_time: float | None,
        isolate: bool,
        recorded_versions: bool = True,
    ) -> None:
        self.charts = charts
        self.recorded_versions = recorded_versions
        self.settings = charts.settings
        self.states = states
        self.entity = entity
        self.until_seq = until_seq
        self.until_time = until_time
        self.isolate = isolate
        self.bounded = until_seq is not None or until_time is not None
        # What `run` counted: the events stepped, and the seq of the row that
        # could not be replayed.
        self.events = 0
        self.stopped_at: int | None = None

    def __call__(self, logged: LoggedEvent) -> tuple[str, StepResult] | None:
        """The state before and the step's result; None for an event of another
        entity; raises `End` past ``until``."""
        if self.bounded and not before_end(logged, self.until_seq, self.until_time):
            raise End
        return self.apply(
            logged.seq, logged.event, logged.chart, logged.chart_version, logged.outcome
        )

    def run(self, rows: Sequence[LogRow], compare: bool) -> Stepped | None:
        """Step a batch of log rows (`engine.store.rows.EVENT_COLUMNS`) in
        order, adding the events stepped to ``events``: with ``compare``, the
        first whose recomputed outcome differs from its row's, else None.
        Raises `End` at the first row past ``until`` (it is not read) and the
        `ReplayError` of a row that cannot be replayed (its seq in ``stopped_at``).

        The rows go straight to the step: no `LoggedEvent` unless one diverges."""
        charts, apply = self.charts, self.apply
        types = charts.event_types
        bounded, until_seq, until_time = self.bounded, self.until_seq, self.until_time
        count = 0
        try:
            for row in rows:
                if bounded and past_end(row[0], row[7], until_seq, until_time):
                    raise End
                try:
                    # `decode_row`, a call less a row.
                    event = parse(types, row[2], row[1], row[3], row[4], row[6], row[7], row[8])
                except EventRejected as rejected:
                    raise unreadable(row, charts, rejected) from None
                stepped = apply(row[0], event, row[5], row[13], row[9])
                if stepped is None:
                    continue
                count += 1
                if compare and differs(stepped[1], row[9], row[10], row[11], row[12]):
                    return LoggedEvent.of(row, event), stepped[0], stepped[1]
        except ReplayError:
            self.stopped_at = row[0]
            raise
        finally:
            self.events += count
        return None

    def apply(
        self, seq: int, event: Event, chart_name: str | None, version: int | None, outcome: str
    ) -> tuple[str, StepResult] | None:
        """One logged event (``version``: of the chart that applied it, None
        for 1) against the replayed states."""
        key = event.entity
        if self.entity is not None and key != self.entity:
            return None
        chart = self.charts.by_kind.get(key.split(":", 1)[0])
        if chart is None:
            kind = event.entity_kind
            raise ChartNotInstalled(chart_name or kind, kind, seq, list(self.charts.by_name))
        if event.type == UPGRADE_EVENT:
            # Under other charts (what-if), moving between recorded versions means nothing.
            return self._upgrade(key, event) if self.recorded_versions else None
        if self.recorded_versions and (version or 1) != chart.version:
            chart = self._version(chart, version or 1, seq)
        before = self.states.get(key)
        if before is None:
            before = new_entity(chart, key)
        careful = self.isolate or outcome == _ERROR
        result = (step if careful else step_trusted)(chart, before, event, self.settings)
        if result.outcome is TRANSITIONED:
            # The step keeps the version ``before`` is on: it moves only by an upgrade.
            self.states[key] = result.entity
        return before.state, result

    def _version(self, newest: CompiledChart, version: int, seq: int) -> CompiledChart:
        """The version of the chart that applied the event at ``seq``, as its row records."""
        try:
            return self.charts.version(newest.name, version)
        except VersionNotInstalled as missing:
            raise ChartVersionNotInstalled(missing, seq) from None

    def _upgrade(self, key: str, event: Event) -> tuple[str, StepResult]:
        """A logged ``chart.upgraded``: the move again, from the replayed state."""
        before = self.states.get(key)
        if before is None:
            before = new_entity(self.charts.by_kind[key.split(":", 1)[0]], key)
        result = upgrade_step(self.charts, before, event)
        if result.outcome is TRANSITIONED:
            self.states[key] = result.entity
        return before.state, result


def differs(
    result: StepResult,
    outcome: str | None,
    from_state: str | None,
    to_state: str | None,
    reason: str | None,
) -> bool:
    """Does a recomputed step differ from the outcome a row records?"""
    return (
        result.outcome.value != outcome
        or result.from_state != from_state
        or result.to_state != to_state
        or result.reason != reason
    )


__all__ = ["End", "LogStepper", "Stepped", "before_end", "differs", "past_end"]
