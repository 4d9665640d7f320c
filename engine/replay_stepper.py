"""The stepper every replay shares: one logged event at a time against the
replayed states, with the chart version that applied it (engine.replay)."""

from __future__ import annotations

from engine.charts.compiled import CompiledChart
from engine.chartset import ChartSet, VersionNotInstalled
from engine.log_reader import ChartNotInstalled, ChartVersionNotInstalled, LoggedEvent
from engine.step import EntityState, Outcome, StepResult, new_entity, step, step_trusted
from engine.upgrades import UPGRADE_EVENT, upgrade_step


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

    def __call__(self, logged: LoggedEvent) -> tuple[str, StepResult] | None:
        """The state before and the step's result; None for an event of another
        entity; raises `_End` past ``until``."""
        if self.bounded and not before_end(logged, self.until_seq, self.until_time):
            raise End
        event = logged.event
        key = event.entity
        if self.entity is not None and key != self.entity:
            return None
        chart = self.charts.by_kind.get(key.split(":", 1)[0])
        if chart is None:
            raise ChartNotInstalled(
                logged.chart or event.entity_kind,
                event.entity_kind,
                logged.seq,
                list(self.charts.by_name),
            )
        if event.type == UPGRADE_EVENT:
            # Under other charts (what-if), moving between recorded versions means nothing.
            return self._upgrade(key, logged) if self.recorded_versions else None
        if self.recorded_versions and logged.chart_version != chart.spec.version:
            chart = self._version(chart, logged)
        before = self.states.get(key)
        if before is None:
            before = new_entity(chart, key)
            before.chart_version = chart.spec.version
        careful = self.isolate or logged.outcome == _ERROR
        result = (step if careful else step_trusted)(chart, before, event, self.settings)
        if result.outcome is Outcome.TRANSITIONED:
            result.entity.chart_version = before.chart_version
            self.states[key] = result.entity
        return before.state, result

    def _version(self, newest: CompiledChart, logged: LoggedEvent) -> CompiledChart:
        """The version of the chart that applied ``logged``, as its row records."""
        try:
            return self.charts.version(newest.name, logged.chart_version)
        except VersionNotInstalled as missing:
            raise ChartVersionNotInstalled(missing, logged.seq) from None

    def _upgrade(self, key: str, logged: LoggedEvent) -> tuple[str, StepResult]:
        """A logged ``chart.upgraded``: the move again, from the replayed state."""
        before = self.states.get(key)
        if before is None:
            newest = self.charts.by_kind[key.split(":", 1)[0]]
            before = new_entity(newest, key)
            before.chart_version = newest.spec.version
        result = upgrade_step(self.charts, before, logged.event)
        if result.outcome is Outcome.TRANSITIONED:
            self.states[key] = result.entity
        return before.state, result


__all__ = ["End", "LogStepper", "before_end", "past_end"]
