"""One writer per database (ENG-10): an exclusive advisory lock beside the file.

`Engine.open` takes ``<db>.lock`` with ``flock`` before it opens the store and
keeps it until `Engine.stop`. The kernel drops the lock when the process ends,
however it ends (a crash, SIGKILL), so a stale lock never needs cleaning up.
While held, the file names its holder (pid, command line, start time, host):
that is what a second process quotes when it refuses to start.

The lock file is never deleted. Deleting it would let a process that opened
the old file and one that created a new one both "hold" a lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from engine.store.errors import DatabaseInUse

# How often a waiting process tries the lock again.
_POLL = 0.05


def lock_path(db: str | Path) -> Path:
    """Where the lock of database ``db`` lives: ``<db>.lock``, beside it."""
    db = Path(db)
    return db.with_name(db.name + ".lock")


@dataclass(frozen=True, slots=True)
class Holder:
    """Who holds a database's lock, as it wrote itself into the lock file."""

    pid: int | None
    command: str
    started_at: float | None
    host: str

    def describe(self) -> str:
        if self.pid is None:
            return "another process (it has not written its name yet)"
        started = (
            datetime.fromtimestamp(self.started_at, UTC).isoformat(timespec="seconds")
            if self.started_at is not None
            else "an unknown time"
        )
        started = started.replace("+00:00", "Z")
        where = f" on {self.host}" if self.host and self.host != socket.gethostname() else ""
        return f"pid {self.pid}{where} ({self.command}), started {started}"


def read_holder(path: str | Path) -> Holder:
    """The holder named in lock file ``path`` (what it says; not proof it is alive)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
        record: dict[str, Any] = json.loads(text) if text.strip() else {}
    except (OSError, ValueError):
        record = {}
    if not isinstance(record, dict):
        record = {}
    pid = record.get("pid")
    started = record.get("started_at")
    return Holder(
        pid if isinstance(pid, int) else None,
        str(record.get("command") or "unknown command"),
        float(started) if isinstance(started, int | float) else None,
        str(record.get("host") or ""),
    )


class DatabaseLock:
    """The held lock of one database; `release` (or process exit) gives it up."""

    def __init__(self, db: Path, path: Path, fd: int) -> None:
        self.db = db
        self.path = path
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, db: str | Path, *, wait: float = 0.0) -> DatabaseLock:
        """Take the lock of ``db``, trying for up to ``wait`` seconds.

        Raises `DatabaseInUse`, naming the holder, if another process (or
        another open engine in this one) keeps it."""
        db = Path(db)
        path = lock_path(db)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Not inherited by child processes (os.open's default): a writer
        # process or a plugin's helper must not keep the lock after we exit.
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + max(0.0, wait)
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise DatabaseInUse(str(db), read_holder(path).describe()) from None
                    time.sleep(_POLL)
            _write_holder(fd)
        except BaseException:
            os.close(fd)
            raise
        return cls(db, path, fd)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        """Give the lock up; calling it again does nothing."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            # Cleared first, so a later refusal never quotes a holder that left.
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


def current_holder(db: str | Path) -> Holder | None:
    """Who holds the lock of ``db`` now, or None when nobody does (a page that
    reads the database says when another process writes to it). Tested with a
    shared lock taken and dropped at once: a writer starting within those
    microseconds without ``lock_wait`` would be refused, so pages ask this
    when they are rendered, never in a loop."""
    path = lock_path(db)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None  # no lock file: no engine ever opened the database
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return read_holder(path)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _write_holder(fd: int) -> None:
    record = {
        "pid": os.getpid(),
        "command": _command_line(),
        "started_at": time.time(),
        "host": socket.gethostname(),
    }
    data = json.dumps(record).encode()
    os.ftruncate(fd, 0)
    os.pwrite(fd, data, 0)


def _command_line() -> str:
    """This process's command line as an operator would recognise it."""
    argv = list(sys.argv) or ["python"]
    program = Path(argv[0])
    # `python -m engine.cli.main ...` is the `channelsync` command too.
    argv[0] = "channelsync" if program.parts[-3:] == ("engine", "cli", "main.py") else program.name
    text = " ".join(argv)
    return text if len(text) <= 200 else text[:197] + "..."
