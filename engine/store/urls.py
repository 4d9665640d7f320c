"""Opening a store from what a user gives: a SQLite file's path, or a PostgreSQL URL.

``postgresql://`` and ``postgres://`` name a PostgreSQL database
(`engine.store.postgres.PostgresStore`); anything else is a SQLite file
(`engine.store.sqlite.SQLiteStore`). `open_store`, `lock_store` and
`vault_path` are what `engine.lifecycle.open_database` and the command line
use, so neither names a store's class.

The vault's keys (`engine.vault`) never live in the database next to the data
they protect: beside a SQLite file they are ``<db>.keys``; for a PostgreSQL
database they are the file named by ``CHANNELSYNC_VAULT_KEYS``, or by default
``$XDG_DATA_HOME/channelsync/keys/<host>-<port>-<database>.keys``
(``~/.local/share`` when the variable is unset).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit, urlunsplit

from engine.settings import EngineSettings
from engine.store.lock import DatabaseLock
from engine.store.migrate import Migration
from engine.store.protocol import Store
from engine.vault import KEYS_SUFFIX

if TYPE_CHECKING:
    # psycopg is imported only by who opens a PostgreSQL database: SQLite's
    # users (and every command's start-up) do without it.
    from engine.store.postgres_lock import PostgresLock

SCHEMES = ("postgresql://", "postgres://")
VAULT_VARIABLE = "CHANNELSYNC_VAULT_KEYS"


def is_store_url(target: str | Path) -> bool:
    """Whether ``target`` names a PostgreSQL database rather than a SQLite file."""
    return isinstance(target, str) and target.startswith(SCHEMES)


def without_password(url: str) -> str:
    """``url`` with its password masked (what may appear in a log line)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def shown(target: str | Path) -> str:
    """``target`` as a log line or a message may show it: no password."""
    text = str(target)
    return without_password(text) if "://" in text else text


async def open_store(
    target: str | Path,
    *,
    settings: EngineSettings,
    migrations: Sequence[Migration] = (),
    read_only: bool = False,
) -> Store:
    """The store ``target`` names, its schema brought up to date (or, with
    ``read_only``, only read: every write raises `WriteRefused`)."""
    if is_store_url(target):
        from engine.store.postgres import PostgresStore

        url = str(target)
        if read_only:
            return await PostgresStore.open_readonly(url)
        return await PostgresStore.open(url, migrations=migrations)
    from engine.store.sqlite import SQLiteStore

    if read_only:
        return await SQLiteStore.open_readonly(target)
    return await SQLiteStore.open(
        target, synchronous=settings.synchronous, writer=settings.writer, migrations=migrations
    )


def lock_store(target: str | Path, *, wait: float = 0.0) -> DatabaseLock | PostgresLock:
    """Take ``target``'s one-writer lock (ENG-10); `DatabaseInUse` names its holder."""
    if is_store_url(target):
        from engine.store.postgres_lock import PostgresLock

        return PostgresLock.acquire(str(target), wait=wait)
    return DatabaseLock.acquire(target, wait=wait)


def vault_path(target: str | Path) -> str:
    """Where the vault's keys of ``target`` live (see the module's docstring)."""
    if not is_store_url(target):
        text = str(target)
        return ":memory:" if text == ":memory:" else text + KEYS_SUFFIX
    chosen = os.environ.get(VAULT_VARIABLE)
    if chosen:
        return chosen
    parts = urlsplit(str(target))
    database = parts.path.lstrip("/") or parts.username or "postgres"
    name = f"{parts.hostname or 'localhost'}-{parts.port or 5432}-{database}{KEYS_SUFFIX}"
    name = unquote(name).replace(os.sep, "_")
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    directory = Path(data_home) / "channelsync" / "keys"
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    return str(directory / name)


__all__ = ["SCHEMES", "VAULT_VARIABLE", "is_store_url", "lock_store", "open_store", "vault_path"]
