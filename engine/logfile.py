"""The event log as a file: JSON Lines, versioned, for sharing and replaying.

Line 1 is a header, ``{"format": "channelsync.eventlog", "version": 2,
"source", "entity", "since_seq", "base", "exported_at"}``; every other line
is one logged event with its recorded outcome: ``seq, event_id, type,
source, entity, chart, occurred_at, received_at, payload, outcome,
from_state, to_state, reason``.

A whole log has ``since_seq`` 0 and an empty ``base``. An export that starts
mid-log (``since_seq`` N) lists in ``base`` the state at seq N ({key, chart,
state, data, version}) of each entity its events touch that existed then:
what its first exported event applies to. A reader refuses a file of another
format or a newer version; a version 1 file that starts mid-log has no base,
and replay refuses it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import IO, Any

from pydantic_core import from_json, to_json

from engine.chartset import ChartSet
from engine.replay import LoggedEvent, replay
from engine.step import EntityState
from engine.store.protocol import Store
from engine.store.rows import EVENT_COLUMNS, loads
from engine.vault import redact as redact_personal

FORMAT = "channelsync.eventlog"
VERSION = 2
COLUMNS = EVENT_COLUMNS


class LogFileError(Exception):
    pass


class NoBase(LogFileError):
    """A file that starts mid-log without the states to start from."""


async def export_log(
    store: Store,
    out: IO[bytes],
    *,
    entity: str | None = None,
    since_seq: int = 0,
    exported_at: float | None = None,
    charts: ChartSet | None = None,
    redact: bool = False,
) -> int:
    """Write the log (or one entity's part of it, from ``since_seq``) as JSONL.

    With ``redact``, sealed values and personal fields (docs/personal-data.md)
    are replaced by "[redacted]" in payloads and in the base's data (SEC-3).

    From ``since_seq`` > 0, ``charts`` are needed: the entities' states at the
    cut are rebuilt by replaying the log up to it, and written as the base."""
    base: list[EntityState] = []
    if since_seq > 0:
        if charts is None:
            raise ValueError("an export that starts mid-log needs the charts to write its base")
        base = await states_at(store, charts, since_seq, entity)
    header = {
        "format": FORMAT,
        "version": VERSION,
        "source": store.path,
        "entity": entity,
        "since_seq": since_seq,
        "base": [redact_personal(state.as_dict()) if redact else state.as_dict() for state in base],
        "redacted": redact,
        "exported_at": exported_at,
    }
    out.write(to_json(header) + b"\n")
    count = 0
    async for row in store.iter_events(since_seq, entity=entity):
        record = dict(zip(COLUMNS, row, strict=True))
        record["payload"] = loads(record["payload"])
        if redact:
            record["payload"] = redact_personal(record["payload"])
        out.write(to_json(record) + b"\n")
        count += 1
    return count


async def states_at(
    store: Store, charts: ChartSet, seq: int, entity: str | None = None
) -> list[EntityState]:
    """The state at ``seq`` of each entity that has events after ``seq`` (and
    existed then), rebuilt by replay."""
    if entity is not None:
        later = {entity}
    else:
        later = await store.entities_logged_after(seq)
    if not later:
        return []
    rebuilt = await replay(store, charts, entity=entity, until_seq=seq)
    return [rebuilt.entities[key] for key in sorted(later) if key in rebuilt.entities]


def read_header(path: Path) -> dict[str, Any]:
    with path.open("rb") as handle:
        first = handle.readline()
    try:
        header = from_json(first)
    except ValueError:
        header = None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise LogFileError(f"{path} is not a channelsync event log (no '{FORMAT}' header)")
    if int(header.get("version", 0)) > VERSION:
        raise LogFileError(
            f"{path} is version {header['version']}; this channelsync reads up to {VERSION}"
        )
    return header


def read_records(path: Path) -> Iterator[dict[str, Any]]:
    """The file's logged events, in order."""
    read_header(path)
    with path.open("rb") as handle:
        handle.readline()
        for number, line in enumerate(handle, start=2):
            if not line.strip():
                continue
            try:
                yield from_json(line)
            except ValueError as error:
                raise LogFileError(f"{path}:{number}: not JSON: {error}") from None


def starts_mid_log(header: dict[str, Any]) -> bool:
    return int(header.get("since_seq") or 0) > 0


def read_base(path: Path) -> dict[str, EntityState]:
    """The states a mid-log export starts from (empty for a whole log).

    Refuses a mid-log file without a base (written before version 2):
    replaying it from the initial states would show states that never were."""
    header = read_header(path)
    if not starts_mid_log(header):
        return {}
    if "base" not in header:
        raise NoBase(
            f"{path} starts after seq {header['since_seq']} of its log (export --since) and"
            " carries no states to start from: replaying it from the initial states would"
            " show states that never were. Export it again with this channelsync (a mid-log"
            " export now includes the entities' states at the cut), or export the whole log"
        )
    try:
        return {
            item["key"]: EntityState(
                item["key"], item["chart"], item["state"], item["data"], item["version"]
            )
            for item in header["base"]
        }
    except (KeyError, TypeError):
        raise LogFileError(
            f"{path}: the header's base is not a list of {{key, chart, state, data, version}}"
        ) from None


async def logged_events_from_file(path: Path, charts: ChartSet) -> AsyncIterator[LoggedEvent]:
    for record in read_records(path):
        row = [record.get(column) for column in COLUMNS]
        row[COLUMNS.index("payload")] = to_json(record.get("payload") or {})
        yield LoggedEvent.from_row(row, charts)


def event_of(record: dict[str, Any]) -> dict[str, Any]:
    """The event a record carries, without its recorded outcome (for ingest)."""
    return {
        key: record[key]
        for key in ("event_id", "type", "source", "entity", "occurred_at", "received_at", "payload")
        if key in record
    }
