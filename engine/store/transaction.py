"""One SQLite write transaction, on the writer's thread or process."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def in_transaction(db: sqlite3.Connection, work: Callable[[], T]) -> T:
    """``work()`` inside BEGIN IMMEDIATE ... COMMIT, rolled back if it raises.

    A failed ROLLBACK (the connection already gone) must not hide the error
    that caused it, so it is suppressed."""
    db.execute("BEGIN IMMEDIATE")
    try:
        result = work()
        db.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            db.execute("ROLLBACK")
        raise
    return result


__all__ = ["in_transaction"]
