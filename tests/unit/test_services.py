"""Tests that need PostgreSQL or NATS skip without them, except in CI, where they fail."""

from __future__ import annotations

import pytest

from engine.testing import services


def test_missing_server_skips_on_a_developer_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(services.REQUIRE_VARIABLE, raising=False)
    monkeypatch.setenv(services.NATS_VARIABLE, "nats://127.0.0.1:9")
    with pytest.raises(pytest.skip.Exception, match=r"no NATS server at nats://127\.0\.0\.1:9"):
        services.nats_url()


def test_missing_server_fails_where_services_are_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(services.REQUIRE_VARIABLE, "1")
    monkeypatch.setenv(services.POSTGRES_VARIABLE, "postgresql://u:secret@127.0.0.1:9/x")
    with pytest.raises(pytest.fail.Exception) as failed:
        services.postgres_url()
    # The reason names the server but never its password.
    assert "u:***@127.0.0.1:9" in str(failed.value)
    assert "secret" not in str(failed.value)


def test_fresh_database_is_empty_and_dropped(pg_database_url: str) -> None:
    import psycopg

    with psycopg.connect(pg_database_url) as conn:
        tables = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchone()
    assert tables == (0,)
