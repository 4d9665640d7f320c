"""The real PostgreSQL and NATS JetStream servers that tests run against.

Tests that need a server ask for it through `postgres_url()` / `nats_url()`
(or the pytest fixtures built on them). On a machine without the server they
skip with the reason; with ``CHANNELSYNC_REQUIRE_SERVICES=1`` in the
environment (`.ci/run` sets it) a missing server fails the test instead, so CI
never passes by skipping. The addresses come from ``CHANNELSYNC_TEST_POSTGRES``
and ``CHANNELSYNC_TEST_NATS``, defaulting to the servers the README tells how
to start (PostgreSQL on 127.0.0.1:5432, database ``test``, user ``postgres``;
NATS with JetStream on 127.0.0.1:4222).

Every test gets a database of its own (`fresh_database`), created from the
server's default and dropped afterwards, so tests run in parallel and leave
nothing behind.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import pytest

from engine.store.urls import without_password

REQUIRE_VARIABLE = "CHANNELSYNC_REQUIRE_SERVICES"
POSTGRES_VARIABLE = "CHANNELSYNC_TEST_POSTGRES"
NATS_VARIABLE = "CHANNELSYNC_TEST_NATS"
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
DEFAULT_NATS = "nats://127.0.0.1:4222"


def services_required() -> bool:
    """Whether a missing server fails the test (CI) rather than skipping it."""
    return os.environ.get(REQUIRE_VARIABLE, "") not in ("", "0")


def unavailable(reason: str) -> None:
    """Skip the calling test, or fail it where services are required."""
    if services_required():
        pytest.fail(f"{reason} ({REQUIRE_VARIABLE} is set, so this is a failure)")
    pytest.skip(reason)


def _reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection(
            (parts.hostname or "127.0.0.1", parts.port or default_port), 1
        ):
            return True
    except OSError:
        return False


def postgres_url() -> str:
    """The test server's URL, or skip/fail when nothing listens there."""
    url = os.environ.get(POSTGRES_VARIABLE, DEFAULT_POSTGRES)
    if not _reachable(url, 5432):
        unavailable(f"no PostgreSQL at {without_password(url)}; README: 'Services'")
    return url


def nats_url() -> str:
    """The NATS (JetStream) server's URL, or skip/fail when nothing listens there."""
    url = os.environ.get(NATS_VARIABLE, DEFAULT_NATS)
    if not _reachable(url, 4222):
        unavailable(f"no NATS server at {url}; README: 'Services'")
    return url


def database_url(server_url: str, name: str) -> str:
    """``server_url`` with its database replaced by ``name``."""
    return urlunsplit(urlsplit(server_url)._replace(path=f"/{name}"))


@contextmanager
def fresh_database(server_url: str | None = None) -> Iterator[str]:
    """A new, empty database on the test server (its URL), dropped on exit."""
    import psycopg

    server_url = server_url or postgres_url()
    name = f"channelsync_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield database_url(server_url, name)
    finally:
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def unique_name(prefix: str) -> str:
    """A name no other test uses (a JetStream stream, a subject prefix)."""
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


__all__ = [
    "DEFAULT_NATS",
    "DEFAULT_POSTGRES",
    "REQUIRE_VARIABLE",
    "database_url",
    "fresh_database",
    "nats_url",
    "postgres_url",
    "services_required",
    "unavailable",
    "unique_name",
]
