"""Named records: durable values an adapter keeps beside the engine's tables.

A record is a JSON object under (namespace, key), with when it was stored,
when it expires and when it was used. The namespace is the adapter's own
(``<adapter>.<what>``); the store knows nothing of what a record means. Writes
of several statements run in one ``BEGIN IMMEDIATE`` transaction on the
writer, so they are atomic against every other writer of the file, in this
process or another: a single-use record is spent exactly once.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from engine.store.read_models_sql import Where, where_clause
from engine.store.rows import dumps, loads
from engine.store.sql_reads import SharedSQL
from engine.store.sqlite_base import SQLiteBase
from engine.store.transaction import in_transaction

T = TypeVar("T")
Use = Literal["unknown", "used", "expired", "live"]
_COLUMNS = "namespace, key, value, stored_at, expires_at, used_at"


@dataclass(frozen=True)
class Record:
    namespace: str
    key: str
    value: dict[str, Any] = field(repr=False)  # may hold secrets: never printed
    stored_at: float | None = None
    expires_at: float | None = None
    used_at: float | None = None


def _record(row: Sequence[Any]) -> Record:
    namespace, key, value, stored_at, expires_at, used_at = row
    return Record(namespace, key, loads(value), stored_at, expires_at, used_at)


class SharedRecords(SharedSQL):
    """The records' reads and deletes both stores speak alike (``?`` SQL);
    `_fields_sql` is the store's SQL for field filters (SQLite's here)."""

    def _fields_sql(self, column: str, where: Where | None) -> tuple[str, list[Any]]:
        return where_clause(column, where)

    async def get_record(self, namespace: str, key: str) -> Record | None:
        rows = await self.fetchall(
            f"SELECT {_COLUMNS} FROM records WHERE namespace = ? AND key = ?", (namespace, key)
        )
        return _record(rows[0]) if rows else None

    async def find_records(self, namespace: str, *, where: Where | None = None) -> list[Record]:
        sql = f"SELECT {_COLUMNS} FROM records WHERE namespace = ?"
        params: list[Any] = [namespace]
        fields, more = self._fields_sql("value", where)
        if fields:
            sql += " AND " + fields
            params += more
        return [_record(row) for row in await self.fetchall(sql + " ORDER BY key", params)]

    async def delete_record(self, namespace: str, key: str) -> bool:
        deleted = await self.execute_write(
            "DELETE FROM records WHERE namespace = ? AND key = ?", (namespace, key)
        )
        return deleted > 0

    async def purge_records(self, namespace: str, *, expired_before: float) -> int:
        return await self.execute_write(
            "DELETE FROM records WHERE namespace = ? AND expires_at < ?",
            (namespace, expired_before),
        )


class SQLiteRecords(SQLiteBase, SharedRecords):
    """The records half of `SQLiteReadModels` (see `engine.store.read_models`)."""

    async def put_record(
        self,
        namespace: str,
        key: str,
        value: Mapping[str, Any],
        *,
        at: float | None = None,
        expires_at: float | None = None,
    ) -> None:
        await self.execute_write(
            f"INSERT OR REPLACE INTO records ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, NULL)",
            (namespace, key, dumps(dict(value)), at, expires_at),
        )

    async def use_record(self, namespace: str, key: str, now: float) -> tuple[Use, Record | None]:
        verdict, row = await self.run_write(_use, namespace, key, now)
        return verdict, _record(row) if row is not None else None

    async def move_record(self, namespace: str, key: str, to_namespace: str, to_key: str) -> bool:
        return await self.run_write(_move, namespace, key, to_namespace, to_key)


# The writer runs these (in a writer process, they arrive pickled, so they are
# module-level functions of plain arguments).


def _use(
    db: sqlite3.Connection, namespace: str, key: str, now: float
) -> tuple[Use, tuple[Any, ...] | None]:
    def body() -> tuple[Use, tuple[Any, ...] | None]:
        row = db.execute(
            f"SELECT {_COLUMNS} FROM records WHERE namespace = ? AND key = ?", (namespace, key)
        ).fetchone()
        if row is None:
            return "unknown", None
        if row[5] is not None:
            return "used", tuple(row)
        if row[4] is not None and row[4] <= now:
            return "expired", tuple(row)
        db.execute(
            "UPDATE records SET used_at = ? WHERE namespace = ? AND key = ?", (now, namespace, key)
        )
        return "live", (*row[:5], now)

    return in_transaction(db, body)


def _move(db: sqlite3.Connection, namespace: str, key: str, to_namespace: str, to_key: str) -> bool:
    def body() -> bool:
        moved = db.execute(
            f"INSERT OR REPLACE INTO records ({_COLUMNS})"
            " SELECT ?, ?, value, stored_at, expires_at, used_at FROM records"
            " WHERE namespace = ? AND key = ?",
            (to_namespace, to_key, namespace, key),
        ).rowcount
        if moved and (to_namespace, to_key) != (namespace, key):
            db.execute("DELETE FROM records WHERE namespace = ? AND key = ?", (namespace, key))
        return moved > 0

    return in_transaction(db, body)
