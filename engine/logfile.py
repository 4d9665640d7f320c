"""The event log as a file: JSON Lines, versioned, for sharing and replaying.

Line 1 is a header, ``{"format": "channelsync.eventlog", "version": 1, ...}``;
every other line is one logged event with its recorded outcome:
``seq, event_id, type, source, entity, chart, occurred_at, received_at,
payload, outcome, from_state, to_state, reason``. A reader refuses a file of
another format or a newer version.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import IO, Any

from pydantic_core import from_json, to_json

from engine.chartset import ChartSet
from engine.replay import LoggedEvent
from engine.store.sqlite import EVENT_COLUMNS, SQLiteStore, loads

FORMAT = "channelsync.eventlog"
VERSION = 1
COLUMNS = EVENT_COLUMNS


class LogFileError(Exception):
    pass


async def export_log(
    store: SQLiteStore,
    out: IO[bytes],
    *,
    entity: str | None = None,
    since_seq: int = 0,
    exported_at: float | None = None,
) -> int:
    """Write the log (or one entity's part of it, from ``since_seq``) as JSONL."""
    header = {
        "format": FORMAT,
        "version": VERSION,
        "source": store.path,
        "entity": entity,
        "since_seq": since_seq,
        "exported_at": exported_at,
    }
    out.write(to_json(header) + b"\n")
    count = 0
    async for row in store.iter_events(since_seq, entity=entity):
        record = dict(zip(COLUMNS, row, strict=True))
        record["payload"] = loads(record["payload"])
        out.write(to_json(record) + b"\n")
        count += 1
    return count


def read_records(path: Path) -> Iterator[dict[str, Any]]:
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
        for number, line in enumerate(handle, start=2):
            if not line.strip():
                continue
            try:
                yield from_json(line)
            except ValueError as error:
                raise LogFileError(f"{path}:{number}: not JSON: {error}") from None


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
