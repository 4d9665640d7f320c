"""What each page shows, read from the backend and made presentable.

Nothing here renders HTML (the templates do) or answers HTTP (`app`); each
function returns the values one template needs. Personal data goes through
the backend's `Presenter` on its way to any page.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from engine.charts.configuration import active_states, atomic_states
from engine.charts.mermaid import diagram_ids, to_mermaid
from engine.charts.schema import ChartSpec
from engine.chartset import VersionNotInstalled
from engine.dead_letters import discarded_text
from engine.inspector.backend import ActionRefused as _Refused
from engine.inspector.backend import Backend, retryable_event
from engine.inspector.present import as_json, erased
from engine.outbox_admin import OutboxCommands
from engine.store.inspector_reads import (
    EntityQuery,
    entity_page,
    event_count,
    last_seq,
    timeline_page,
)

ENTITY_PAGE = 50
TIMELINE_PAGE = 100
LETTERS_SHOWN = 200


def when(timestamp: float | None) -> str:
    """A time as people read it here: UTC, to the second."""
    if timestamp is None:
        return ""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S")


def parse_time(text: str | None) -> float | None:
    """A form's date or date-time (UTC) as a timestamp; ValueError for anything else."""
    if not text:
        return None
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


@dataclass(frozen=True, slots=True)
class EntityFilters:
    """The entity list's form, as given (strings) and as a query."""

    prefix: str = ""
    chart: str = ""
    state: str = ""
    updated_from: str = ""
    updated_to: str = ""

    def query(self, after: str | None, limit: int = ENTITY_PAGE) -> EntityQuery:
        return EntityQuery(
            prefix=self.prefix,
            chart=self.chart or None,
            state=self.state or None,
            updated_from=parse_time(self.updated_from),
            updated_to=parse_time(self.updated_to),
            after=after,
            limit=limit,
        )

    def params(self) -> dict[str, str]:
        """The filters as the query string of a link (the next page keeps them)."""
        pairs = {
            "q": self.prefix,
            "chart": self.chart,
            "state": self.state,
            "from": self.updated_from,
            "to": self.updated_to,
        }
        return {k: v for k, v in pairs.items() if v}


def state_ids(spec: ChartSpec) -> set[str]:
    """Every state's dotted id in a chart."""
    return set(_diagram_text(spec)[1])


def chart_of_state(backend: Backend, filters: EntityFilters) -> EntityFilters:
    """The filters with the chart a state filter implies, when one installed
    chart alone (any version) has a state of that id: an entity is only ever
    in its own chart's states, and the store then reads that chart's entities
    alone (the entities_by_chart_key index) instead of every entity by key."""
    if filters.chart or not filters.state:
        return filters
    having = {
        name
        for (name, _v), chart in backend.charts.versions.items()
        if filters.state in state_ids(chart.spec)
    }
    if len(having) != 1:
        return filters
    return replace(filters, chart=having.pop())


async def entities_page(
    backend: Backend, filters: EntityFilters, after: str | None
) -> dict[str, Any]:
    """One page of entities (one more is read to know whether a next page exists)."""
    query = chart_of_state(backend, filters).query(after, ENTITY_PAGE + 1)
    rows = await entity_page(backend.store, query)
    more = len(rows) > ENTITY_PAGE
    rows = rows[:ENTITY_PAGE]
    return {
        "filters": filters,
        "charts": sorted(backend.charts.by_name),
        "entities": [
            {"key": e.key, "chart": e.chart, "state": e.state, "updated": when(e.updated_at)}
            for e in rows
        ],
        "next_after": rows[-1].key if more and rows else None,
        "after": after,
    }


# Installed charts never change while the process runs: one drawing per version.
_DRAWN: dict[tuple[str, int], tuple[str, dict[str, str]]] = {}


def _diagram_text(spec: ChartSpec) -> tuple[str, dict[str, str]]:
    key = (spec.name, spec.version)
    if key not in _DRAWN:
        _DRAWN[key] = (to_mermaid(spec), diagram_ids(spec))
    return _DRAWN[key]


def _structure(text: str) -> str:
    """The diagram's states only: a big chart's transitions hide its shape."""
    return "\n".join(
        line
        for line in text.splitlines()
        if not (" --> " in line and " : " in line) and not line.strip().startswith("note ")
    )


def diagram(spec: ChartSpec, state: str) -> tuple[str, str]:
    """The chart's Mermaid diagram, states only and with every transition, with
    the entity's active atomic states lit (a lit composite would hide them)."""
    text, ids = _diagram_text(spec)
    lit = sorted(ids[s] for s in atomic_states(state) if s in ids)
    style = (
        "    classDef active fill:#ffe082,stroke:#bf360c,stroke-width:3px,font-weight:bold\n"
        + "".join(f"    class {state_id} active\n" for state_id in lit)
        if lit
        else ""
    )
    return _structure(text) + "\n" + style, text + style


def event_row(backend: Backend, key: str, item: Mapping[str, Any], hidden: bool) -> dict[str, Any]:
    """One timeline row for a page (or for the live feed)."""
    presenter = backend.presenter
    return {
        "seq": item["seq"],
        "entity": key,
        "event_id": item["event_id"],
        "time": when(item["received_at"]),
        "type": item["type"],
        "source": item["source"],
        "outcome": item["outcome"],
        "from_state": item["from_state"] or "",
        "to_state": item["to_state"] or "",
        "reason": presenter.text(item["reason"]) or "",
        "version": item["chart_version"],
        "payload": as_json(presenter.value(key, item["payload"], erased=hidden)),
    }


async def entity_page_data(backend: Backend, key: str, before: int | None) -> dict[str, Any] | None:
    """Everything the entity page shows; None when nothing is known of ``key``."""
    store = backend.store
    # Read before the timeline: an event committed in between is then both on
    # the page and in the live feed (the page drops the repeat), never lost.
    live_after = await last_seq(store) if before is None else None
    entity = await store.entity(key)
    timeline = await timeline_page(store, key, before=before, limit=TIMELINE_PAGE)
    # Discarded letters too: the entity's page is its whole history.
    letters = await store.dead_letters(key, include_discarded=True)
    if entity is None and not timeline and not letters:
        return None
    hidden = erased(entity.data if entity else None)
    commands = await OutboxCommands(store, backend.clock).list("all", entity=key)
    chart_text: tuple[str, str] | None = None
    chart_note = None
    if entity is not None:
        try:
            chart = backend.charts.version(entity.chart, entity.chart_version)
            chart_text = diagram(chart.spec, entity.state)
        except VersionNotInstalled as missing:
            chart_note = str(missing)
    return {
        "key": key,
        "entity": entity,
        "data": as_json(backend.presenter.value(key, entity.data, erased=hidden))
        if entity
        else None,
        "active": sorted(active_states(entity.state)) if entity else [],
        "diagram": chart_text,
        "diagram_note": chart_note,
        "events": [event_row(backend, key, item, hidden) for item in timeline],
        "total": await event_count(store, key),
        "next_before": timeline[-1]["seq"] if len(timeline) == TIMELINE_PAGE else None,
        "live_after": live_after,
        "commands": await command_rows(backend, commands),
        "timers": [
            {"name": t.name, "due": when(t.due_at), "event": t.event_type}
            for t in await store.timers(key)
        ],
        "letters": [letter_row(backend, d) for d in letters],
    }


async def command_rows(backend: Backend, commands: list[Any]) -> list[dict[str, Any]]:
    """The commands for a page, each with whether its result was logged: a
    handler's events carry ids made from the command's idempotency key
    (``result:<key>``, `engine.history`)."""
    ids = [f"result:{c.idempotency_key}" for c in commands]
    logged = await backend.store.known_event_ids(ids) if ids else set()
    return [
        {**command_row(backend, c), "result": f"result:{c.idempotency_key}" in logged}
        for c in commands
    ]


def command_row(backend: Backend, command: Any) -> dict[str, Any]:
    text = backend.presenter.text
    return {
        "id": command.id,
        "type": command.type,
        "entity": command.entity,
        "status": command.status,
        "attempts": command.attempts,
        "reason": text(command.reason) or "",
        "last_error": text(command.last_error) or "",
        "created": when(command.created_at),
        "done": when(command.done_at),
        "event_seq": command.event_seq,
        "actions": [
            f"{when(a.at)} {a.action} by {a.actor}" + (f": {text(a.reason)}" if a.reason else "")
            for a in command.actions
        ],
        "open": command.status in ("pending", "held", "parked"),
    }


def letter_row(backend: Backend, letter: Any) -> dict[str, Any]:
    try:
        retryable_event(letter)
        why_not = None
    except _Refused as refused:
        why_not = str(refused)
    return {
        "id": letter.id,
        "source": letter.source,
        "entity": letter.entity or "",
        "error": backend.presenter.text(letter.error) or "",
        "raw": backend.presenter.raw(letter.raw),
        "size": letter.size,
        "count": letter.count,
        "first_seen": when(letter.received_at),
        "last_seen": when(letter.last_seen),
        "why_not": why_not,
        "open": letter.open,
        "discarded": backend.presenter.text(discarded_text(letter)) or "",
    }


async def dead_letters_page(backend: Backend) -> dict[str, Any]:
    """Dead letters (the most recent first) and the commands that wait for someone."""
    store = backend.store
    live_after = await last_seq(store)  # first: nothing committed meanwhile is missed
    letters = list(reversed(await store.dead_letters()))[:LETTERS_SHOWN]
    commands = await OutboxCommands(store, backend.clock).list("open")
    return {
        "letters": [letter_row(backend, d) for d in letters],
        "commands": await command_rows(backend, commands),
        "live_after": live_after,
    }
