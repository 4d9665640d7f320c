"""engine.store.urls: which targets are PostgreSQL databases, how they are
shown, and that a SQLite user never pays for the PostgreSQL driver."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from engine.store.urls import is_store_url, shown


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("postgresql://app@db/shop", True),
        ("postgres://app@db/shop", True),
        ("sync.db", False),
        (":memory:", False),
        (Path("postgresql:/app@db/shop"), False),  # a path, whatever it spells
        ("mysql://app@db/shop", False),
    ],
)
def test_only_postgresql_urls_name_a_postgresql_database(
    target: str | Path, expected: bool
) -> None:
    assert is_store_url(target) is expected


def test_a_password_is_never_shown() -> None:
    assert shown("postgresql://app:s3cret@db:6543/shop?sslmode=require") == (
        "postgresql://app:***@db:6543/shop?sslmode=require"
    )
    assert shown("postgresql://app@db/shop") == "postgresql://app@db/shop"
    assert shown(Path("/data/sync.db")) == "/data/sync.db"


def test_opening_sqlite_and_building_the_command_line_never_import_psycopg() -> None:
    code = (
        "import sys, engine.runtime, engine.cli.main, engine.cli.common;"
        "from engine.store.urls import shown, vault_path; shown('x.db'); vault_path('x.db');"
        "print('psycopg' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip() == "False"
