"""The store's writer in a process of its own (opt-in: ``writer="process"``).

A thread writer shares the GIL with the event loop: SQLite's thread must take
it back after every statement it steps, and waits for it while the loop is
busy, so writes and steps take turns (process CPU time equals wall time). A
child process has its own interpreter and GIL: the loop turns a batch into
plain rows, pickles them through a pipe, and steps the next batch while the
child binds and writes. An acknowledgement still means committed: the reply
comes after COMMIT. If the child dies, every write in flight fails (nothing of
it is acknowledged) and the store refuses further writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from typing import Any, TypeVar

from engine.store.errors import WriterProcessDied
from engine.store.writer import _execute

T = TypeVar("T")


class ProcessWriter:
    """The `Writer` interface, with the connection in a child process."""

    def __init__(self, path: str) -> None:
        self._path = path
        parent_end, child_end = socket.socketpair()
        self._pipe = Connection(parent_end.detach())
        self._child_fd = child_end.detach()
        self._process: subprocess.Popen[bytes] | None = None
        # One thread talks to the pipe, so the loop never blocks on it.
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="channelsync-pipe")

    async def open(self, pragmas: Sequence[str]) -> None:
        # A plain interpreter running this module (not multiprocessing's spawn,
        # which would re-import the host's __main__).
        self._process = subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(self._child_fd), self._path],
            pass_fds=(self._child_fd,),
        )
        os.close(self._child_fd)
        await self.run(_connect, pragmas)

    async def run(self, func: Callable[..., T], *args: Any) -> T:
        """``func(connection, *args)`` in the writer process (a module-level function)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._call, func, args)

    def _call(self, func: Callable[..., T], args: tuple[Any, ...]) -> T:
        try:
            self._pipe.send((func, args))
            ok, value = self._pipe.recv()
        except (EOFError, OSError) as err:
            raise WriterProcessDied(f"the writer process is gone: {err}") from err
        if ok:
            return value  # type: ignore[no-any-return]
        raise value

    @property
    def pid(self) -> int | None:
        """The writer process's id (to watch its CPU and memory), once started."""
        return self._process.pid if self._process is not None else None

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return await self.run(_execute, sql, params)

    async def close(self) -> None:
        if self._process is not None and self._process.poll() is None:
            with contextlib.suppress(WriterProcessDied):
                await self.run(_stop)
        self._pipe.close()
        if self._process is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._process.wait, 10)
        self._pool.shutdown(wait=True)


_CHILD = (
    "import sys; from multiprocessing.connection import Connection;"
    " from engine.store.process_writer import _serve;"
    " _serve(Connection(int(sys.argv[1])), sys.argv[2])"
)


def _serve(pipe: Any, path: str) -> None:
    """The child: run what the parent sends until told to stop or it goes away."""
    state: dict[str, Any] = {"path": path, "conn": None}
    while True:
        try:
            func, args = pipe.recv()
        except (EOFError, OSError):
            break
        try:
            if func is _connect:
                state["conn"] = _open(path, *args)
                result: Any = None
            else:
                result = func(state["conn"], *args)
            pipe.send((True, result))
        except BaseException as err:  # sent back and raised in the parent
            pipe.send((False, err))
        if func is _stop:
            break
    if state["conn"] is not None:
        state["conn"].close()


def _open(path: str, pragmas: Sequence[str]) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    for pragma in pragmas:
        conn.execute(pragma)
    return conn


def _connect(conn: Any, pragmas: Sequence[str]) -> None:  # handled by _serve
    raise AssertionError("handled in _serve")


def _stop(conn: Any) -> None:
    return None


__all__ = ["ProcessWriter", "WriterProcessDied"]
