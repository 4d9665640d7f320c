"""A worker's batch, stepped against the entity cache."""

from __future__ import annotations

from pydantic import BaseModel
from pydantic_core import to_json

from engine.bus.cache import EntityCache
from engine.bus.committer import Pending
from engine.bus.duplicates import DuplicateGuard
from engine.bus.receipts import Row, Sink
from engine.charts.compiled import CompiledChart
from engine.chartset import ChartSet, VersionNotInstalled
from engine.events import Event
from engine.step import EntityState, Outcome, StepResult, step_in_place
from engine.store.sqlite import Batch, DuplicateRow, EventRow
from engine.upgrades import UPGRADE_EVENT, upgrade_step


class BatchStepper:
    """Steps each event of a batch against the newest cached state of its
    entity, in arrival order (ENG-4), and makes the batch's rows.

    Each entity is stepped by the version of its chart it is pinned to (a new
    one starts on the newest), and its rows record that version (ENG-9); a
    ``chart.upgraded`` event moves it to a newer version (engine.upgrades).

    `step` runs synchronously, so it is atomic between the workers: an id is
    checked and claimed with no other worker stepping in between."""

    __slots__ = ("_cache", "_charts", "_guard")

    def __init__(self, charts: ChartSet, cache: EntityCache, guard: DuplicateGuard) -> None:
        self._charts = charts
        self._cache = cache
        self._guard = guard

    def step(self, items: list[tuple[Event, Sink]], known: set[str]) -> Pending:
        """The rows of ``items`` (every entity cached); ``known``: the ids
        the store holds, as `DuplicateGuard.finish_read` completed them."""
        claimed: list[str] = []
        try:
            return self._step_items(items, known, claimed)
        except BaseException:
            # A step's own failures are error outcomes, so this is an interrupt
            # or a bug here. Nothing of the batch was acknowledged: release its
            # ids, lest a retry be taken for a duplicate, and forget every
            # uncommitted state, as after a failed commit. (Unlike then, a
            # commit may be in flight: an entity read before it lands is read
            # stale. The cure would be a barrier on every read for a path that
            # only a bug takes; `channelsync check` would report the divergence.)
            self._guard.release(claimed)
            self._cache.forget()
            raise

    def _step_items(
        self, items: list[tuple[Event, Sink]], known: set[str], claimed: list[str]
    ) -> Pending:
        claim = self._guard.claim
        cache = self._cache
        settings = self._charts.settings
        by_kind = self._charts.by_kind
        batch = Batch()
        sinks: list[tuple[Sink, Row]] = []
        keys: list[str] = []
        timers_fired: list[str] = []
        for event, sink in items:
            event_id = event.event_id
            if event.source == "timer":
                timers_fired.append(event_id)
            if not claim(event_id, known):
                duplicate = DuplicateRow(event_id, event.entity, event.received_at or 0.0)
                batch.duplicates.append(duplicate)
                sinks.append((sink, duplicate))
                continue
            claimed.append(event_id)
            key = event.entity
            chart = by_kind[key.partition(":")[0]]
            entity = cache[key]
            if entity.version == 0:
                entity.chart_version = chart.spec.version  # a new entity starts on the newest
            if entity.chart_version == chart.spec.version and event.type != UPGRADE_EVENT:
                result = step_in_place(chart, entity, event, settings)
                result.entity.chart_version = entity.chart_version  # only an upgrade moves it
            else:
                result = _step_versioned(self._charts, chart, entity, event)
            transitioned = result.outcome is Outcome.TRANSITIONED
            row = EventRow(
                event_id,
                event.type,
                event.source,
                key,
                chart.name,
                event.occurred_at,
                event.received_at or 0.0,
                payload_json(event.payload),
                result.outcome.value,
                result.from_state,
                result.to_state,
                result.reason,
                result.entity if transitioned else None,
                result.commands,
                result.timers,
                moved=transitioned
                and (result.to_state != entity.state or entity.chart != chart.name),
                data_json=result.data_json,
                command_json=result.command_json,
                chart_version=result.entity.chart_version,
            )
            if transitioned:
                cache.stepped(key, result.entity)
                keys.append(key)
            batch.events.append(row)
            sinks.append((sink, row))
        return Pending(batch, sinks, keys, cache.epoch, timers_fired)


def _step_versioned(
    charts: ChartSet, newest: CompiledChart, entity: EntityState, event: Event
) -> StepResult:
    """A ``chart.upgraded`` event's move, or the step of an entity pinned to an
    older version of its chart by that version (an error outcome, nothing
    kept, if that version is no longer installed)."""
    if event.type == UPGRADE_EVENT:
        return upgrade_step(charts, entity, event)
    try:
        chart = charts.version(newest.name, entity.chart_version)
    except VersionNotInstalled as missing:
        return StepResult(Outcome.ERROR, entity.state, None, str(missing), entity)
    result = step_in_place(chart, entity, event, charts.settings)
    result.entity.chart_version = entity.chart_version
    return result


def payload_json(payload: BaseModel) -> str:
    """The payload as stored: what ``payload.model_dump_json()`` gives, through
    pydantic_core's `to_json`, which skips that method's keyword handling (a
    large share of the cost for a small payload). ``by_alias=False`` as in
    ``model_dump_json``: the log is read back by field name."""
    return to_json(payload, by_alias=False).decode()
