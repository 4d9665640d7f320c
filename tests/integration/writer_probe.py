"""Run inside a writer process by test_process_writer.py: which modules are
loaded there. It imports nothing of the engine, so asking loads nothing."""

from __future__ import annotations

import sqlite3
import sys


def loaded(conn: sqlite3.Connection, names: list[str]) -> list[str]:
    """Those of ``names`` the process has imported."""
    return [name for name in names if name in sys.modules]
