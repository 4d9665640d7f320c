"""The store conformance suite (engine.testing.store_conformance) against
PostgreSQL: every store under test in a database of its own on the local
server (skipped without one, a failure in CI)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from engine.store.postgres import PostgresStore
from engine.store.protocol import Store
from engine.testing.services import database_url, postgres_url, unique_name
from engine.testing.store_conformance import StoreConformance

# The database of each directory the suite handed a factory. Once the suite
# has removed a directory (a property's example is over) or the test is
# over, its database is emptied and handed to the next directory: DROP DATABASE waits for a
# checkpoint, emptying a schema does not.
_DATABASES: dict[Path, str] = {}
_EMPTIED: list[str] = []


def _admin(name: str | None = None) -> psycopg.Connection[tuple[object, ...]]:
    url = postgres_url() if name is None else database_url(postgres_url(), name)
    return psycopg.connect(url, autocommit=True)


def _recycle(*, all_of_them: bool = False) -> None:
    for directory, name in list(_DATABASES.items()):
        if all_of_them or not directory.exists():
            with _admin(name) as db:
                db.execute("DROP SCHEMA public CASCADE")
                db.execute("CREATE SCHEMA public")
            del _DATABASES[directory]
            _EMPTIED.append(name)


def _url_for(directory: Path) -> str:
    name = _DATABASES.get(directory)
    if name is None:
        _recycle()
        if _EMPTIED:
            name = _EMPTIED.pop()
        else:
            name = unique_name("channelsync_conformance")
            with _admin() as admin:
                admin.execute(f'CREATE DATABASE "{name}"')
        _DATABASES[directory] = name
    return database_url(postgres_url(), name)


async def writable(directory: Path) -> Store:
    return await PostgresStore.open(_url_for(directory))


async def read_only(directory: Path) -> Store:
    return await PostgresStore.open_readonly(_url_for(directory))


@pytest.fixture(autouse=True)
def _recycle_after_each_test() -> Iterator[None]:
    yield
    _recycle(all_of_them=True)


@pytest.fixture(autouse=True, scope="module")
def _drop_databases() -> Iterator[None]:
    yield
    names = [*_DATABASES.values(), *_EMPTIED]
    _DATABASES.clear()
    _EMPTIED.clear()
    if names:
        with _admin() as admin:
            for name in names:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.services
class TestPostgresStore(StoreConformance):
    factory = staticmethod(writable)
    read_only_factory = staticmethod(read_only)
    # Each example creates a database (tens of milliseconds on an idle server).
    examples = 5
