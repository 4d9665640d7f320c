"""Bringing a database's schema up to date: the core's, then the plugins'.

The core schema (`engine.store.schema.MIGRATIONS`) is numbered; each step runs
in its own transaction and ``schema_version`` says how far a file has come.

Plugins add their own tables through the migration hook::

    from engine.store.migrate import Migration

    HELPDESK = [
        Migration("helpdesk", "tickets", "CREATE TABLE helpdesk_tickets (id TEXT PRIMARY KEY)"),
        Migration("helpdesk", "tickets_by_shop",
                  "CREATE INDEX helpdesk_by_shop ON helpdesk_tickets (id)"),
    ]
    store = await SQLiteStore.open(path, migrations=HELPDESK)

A `Migration` is named by its plugin and its step name; ``sql`` holds one or
more statements separated by ``;``. On open, the steps not yet recorded in
``plugin_migrations`` run in the order given, all of them in one transaction,
after the core schema; each is recorded there once applied, so it never runs
twice. If one fails, none of them is kept and `MigrationFailed` names the
plugin and step. A plugin's step, once released, is never edited: a change is
a new step after it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

from engine.store.errors import SchemaMismatch, StoreError
from engine.store.identity import APPLICATION_ID
from engine.store.readonly import version_message
from engine.store.schema import MIGRATIONS, SCHEMA_VERSION


@dataclass(frozen=True, slots=True)
class Migration:
    """One step of a plugin's schema: ``sql`` (statements separated by ``;``)."""

    plugin: str
    name: str
    sql: str


class MigrationFailed(StoreError):
    """A plugin's migration step could not be applied; none of the steps was kept."""

    def __init__(self, plugin: str, name: str, error: str) -> None:
        super().__init__(f"migration {name!r} of plugin {plugin!r} failed: {error}")
        self.plugin = plugin
        self.name = name
        self.error = error

    def __reduce__(self) -> tuple[type[MigrationFailed], tuple[str, str, str]]:
        # Raised in a writer process and unpickled in its parent.
        return (MigrationFailed, (self.plugin, self.name, self.error))


_PLUGIN_TABLE = (
    "CREATE TABLE IF NOT EXISTS plugin_migrations (plugin TEXT NOT NULL, name TEXT NOT NULL,"
    " position INTEGER NOT NULL, PRIMARY KEY (plugin, name)) WITHOUT ROWID"
)


def check_migrations(migrations: Sequence[Migration]) -> None:
    """Refuse a list that names one step twice, or a step without a name or SQL."""
    seen: set[tuple[str, str]] = set()
    for step in migrations:
        if not step.plugin or not step.name or not step.sql.strip():
            raise ValueError(f"migration {step!r} needs a plugin, a name and SQL")
        if (step.plugin, step.name) in seen:
            raise ValueError(f"migration {step.name!r} of plugin {step.plugin!r} is listed twice")
        seen.add((step.plugin, step.name))


def _statements(sql: str) -> list[str]:
    return [statement for statement in sql.split(";") if statement.strip()]


def migrate(db: sqlite3.Connection, path: str, migrations: Sequence[Migration] = ()) -> None:
    """The core schema up to `SCHEMA_VERSION`, then the plugins' pending steps."""
    _migrate_core(db, path)
    if migrations:
        _migrate_plugins(db, migrations)


def _migrate_core(db: sqlite3.Connection, path: str) -> None:
    known = db.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    ).fetchone()
    row = db.execute("SELECT MAX(version) FROM schema_version").fetchone() if known else None
    current = int(row[0]) if row and row[0] is not None else 0
    if current > SCHEMA_VERSION:
        raise SchemaMismatch(version_message(path, current))
    # The mark that lets a read tell this file from another application's
    # (engine.store.identity), set before anything else so a migration that
    # fails part way still leaves a file channelsync recognises.
    if db.execute("PRAGMA application_id").fetchone()[0] != APPLICATION_ID:
        db.execute(f"PRAGMA application_id={APPLICATION_ID}")
    db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    for version in range(current + 1, SCHEMA_VERSION + 1):
        db.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(MIGRATIONS[version - 1]):
                db.execute(statement)
            db.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise


def _migrate_plugins(db: sqlite3.Connection, migrations: Sequence[Migration]) -> None:
    check_migrations(migrations)
    db.execute("BEGIN IMMEDIATE")
    try:
        db.execute(_PLUGIN_TABLE)
        done = set(db.execute("SELECT plugin, name FROM plugin_migrations").fetchall())
        position = db.execute("SELECT COUNT(*) FROM plugin_migrations").fetchone()[0]
        for step in migrations:
            if (step.plugin, step.name) in done:
                continue
            try:
                for statement in _statements(step.sql):
                    db.execute(statement)
            except sqlite3.Error as error:
                raise MigrationFailed(step.plugin, step.name, str(error)) from error
            position += 1
            db.execute(
                "INSERT INTO plugin_migrations (plugin, name, position) VALUES (?, ?, ?)",
                (step.plugin, step.name, position),
            )
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


__all__ = ["Migration", "MigrationFailed", "check_migrations", "migrate"]
