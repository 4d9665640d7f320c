"""The store's writer in a process of its own (opt-in: ``writer="process"``).

A thread writer shares the GIL with the event loop: SQLite's thread must take
it back after every statement it steps, and waits for it while the loop is
busy, so writes and steps take turns (process CPU time equals wall time). A
child process has its own interpreter and GIL: the loop turns a batch into
plain rows, pickles them over a socketpair, and steps the next batch while the
child binds and writes. An acknowledgement still means committed: the reply
comes after COMMIT.

If the child dies, the parent hears of it at once (a pidfd on Linux, which the
event loop watches; elsewhere a poll every 0.1 s), every write in flight fails
with `WriterProcessDied` (nothing of it is acknowledged) and so does every
write until `restart` has started a new child (ENG-12). Who decides to restart,
and how often, is `engine.store.supervisor`.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import pickle
import socket
import sqlite3
import struct
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from engine.store.errors import StoreError, WriterProcessDied
from engine.store.writer import FileIdentity, _execute, is_store_fault

T = TypeVar("T")

# A message is its length (8 bytes, network order) and then its pickle.
_HEADER = struct.Struct("!Q")
_POLL = 0.1  # seconds between looks at the child where there is no pidfd


class ProcessWriter:
    """The `Writer` interface, with the connection in a child process.

    The event loop talks to the child itself, over an asyncio stream on a
    socketpair: no thread between them, since a thread relaying to a pipe
    would take the GIL back from the busy loop twice a commit, waiting up to
    a switch interval each time. One request is in flight at a time, in order.

    ``preload``: modules the child imports as it starts, before it answers:
    those whose functions it will run. Unpickling a function imports its
    module, so without them the first commit would pay the engine's import
    (0.2-0.3 s, docs/performance.md "Issue 18: latency and the wire, second
    pass"), and every publish waiting on it too."""

    def __init__(self, path: str, preload: Sequence[str] = ()) -> None:
        self._path = path
        self._preload = tuple(preload)
        self._pragmas: tuple[str, ...] = ()
        self._process: subprocess.Popen[bytes] | None = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._lock = asyncio.Lock()
        self._gone: str | None = None  # why the child can no longer be used
        self._gone_signal: asyncio.Event | None = None
        self._watch: asyncio.Task[None] | None = None
        self._closing = False
        self.restarts = 0
        # The last write that failed for a reason of the database (disk
        # full, I/O error), cleared by the next write that succeeds.
        self.last_failure: str | None = None

    async def open(self, pragmas: Sequence[str]) -> None:
        self._pragmas = tuple(pragmas)
        self._gone_signal = asyncio.Event()
        await self._start(create=True)

    async def restart(self) -> None:
        """Start a new child once the old one is gone. The database must
        still exist: a new child never creates an empty one in its place."""
        if self._gone is None:
            raise RuntimeError("the writer process is still running")
        await self._discard()
        await self._start(create=False)
        self.restarts += 1

    async def _start(self, *, create: bool) -> None:
        parent_end, child_end = socket.socketpair()
        child_fd = child_end.detach()
        try:
            # A plain interpreter running this module (not multiprocessing's
            # spawn, which would re-import the host's __main__).
            process = subprocess.Popen(
                [sys.executable, "-c", _CHILD, str(child_fd), self._path, *self._preload],
                pass_fds=(child_fd,),
            )
        except BaseException:
            parent_end.close()
            raise
        finally:
            os.close(child_fd)
        self._process = process
        self._reader, self._writer = await asyncio.open_connection(sock=parent_end)
        self._watch = asyncio.create_task(
            self._watch_exit(process), name="channelsync-writer-watch"
        )
        request = pickle.dumps((_connect, (self._pragmas, create)), _PROTOCOL)
        async with self._lock:
            ok, value = await self._round_trip(request)
        if not ok:
            self._mark_gone(f"could not open the database: {value}")
            raise value
        self._gone = None
        if self._gone_signal is not None:
            self._gone_signal.clear()
        if process.poll() is not None:  # died just after it answered: not to be missed
            self._mark_gone(f"the writer process {process.pid} exited ({process.returncode})")

    async def _watch_exit(self, process: subprocess.Popen[bytes]) -> None:
        """Notice the child's death when it happens, not at the next write."""
        loop = asyncio.get_running_loop()
        pidfd: int | None = None
        with contextlib.suppress(AttributeError, OSError):
            pidfd = os.pidfd_open(process.pid)
        try:
            if pidfd is not None:
                exited: asyncio.Future[None] = loop.create_future()

                def on_exit() -> None:
                    if not exited.done():
                        exited.set_result(None)

                loop.add_reader(pidfd, on_exit)
                try:
                    await exited
                finally:
                    loop.remove_reader(pidfd)
            while process.poll() is None:
                await asyncio.sleep(_POLL)
        finally:
            if pidfd is not None:
                os.close(pidfd)
        if process is self._process and not self._closing:
            self._mark_gone(f"the writer process {process.pid} exited ({process.poll()})")

    def _mark_gone(self, reason: str) -> None:
        if self._gone is None:
            self._gone = reason
        if self._gone_signal is not None:
            self._gone_signal.set()

    async def _discard(self) -> None:
        """Let go of the old child: its stream, its process (killed if a
        protocol failure left it running) and its watcher."""
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()
            self._writer = self._reader = None
        process = self._process
        if process is not None and process.poll() is None:
            process.kill()
            await asyncio.get_running_loop().run_in_executor(None, process.wait, 10)
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
            self._watch = None

    @property
    def pid(self) -> int | None:
        """The writer process's id (to watch its CPU and memory), once started."""
        return self._process.pid if self._process is not None else None

    @property
    def gone(self) -> str | None:
        """Why the child cannot be used now (None while it is alive)."""
        return self._gone

    async def wait_gone(self) -> str:
        """Return (the reason) once the child is gone: at once if it already is."""
        assert self._gone_signal is not None, "open the writer first"
        await self._gone_signal.wait()
        return self._gone or "the writer process is gone"

    async def run(self, func: Callable[..., T], *args: Any) -> T:
        """``func(connection, *args)`` in the writer process (a module-level function)."""
        # Shielded: a caller cancelled mid-exchange must not leave its reply
        # unread, where the next request would take it for its own.
        ok, value = await asyncio.shield(self._exchange(pickle.dumps((func, args), _PROTOCOL)))
        if ok:
            self.last_failure = None
            return value  # type: ignore[no-any-return]
        if is_store_fault(value):
            self.last_failure = f"{type(value).__name__}: {value}"
        raise value

    async def _exchange(self, request: bytes) -> tuple[bool, Any]:
        async with self._lock:
            if self._gone is not None:
                raise WriterProcessDied(f"the writer process is gone: {self._gone}")
            return await self._round_trip(request)

    async def _round_trip(self, request: bytes) -> tuple[bool, Any]:
        assert self._reader is not None and self._writer is not None
        try:
            self._writer.write(_HEADER.pack(len(request)) + request)
            await self._writer.drain()
            (size,) = _HEADER.unpack(await self._reader.readexactly(_HEADER.size))
            reply = await self._reader.readexactly(size)
        except (OSError, asyncio.IncompleteReadError) as err:
            self._mark_gone(str(err) or type(err).__name__)
            raise WriterProcessDied(f"the writer process is gone: {self._gone}") from err
        return pickle.loads(reply)  # type: ignore[no-any-return]

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return await self.run(_execute, sql, params)

    async def close(self) -> None:
        self._closing = True
        if self._process is not None and self._process.poll() is None and self._gone is None:
            with contextlib.suppress(WriterProcessDied):
                await self.run(_stop)
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()
        if self._process is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._process.wait, 10)
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch


_PROTOCOL = pickle.HIGHEST_PROTOCOL

_CHILD = (
    "import sys; from engine.store.process_writer import _serve;"
    " _serve(int(sys.argv[1]), sys.argv[2], sys.argv[3:])"
)


def _serve(fd: int, path: str, preload: Sequence[str] = ()) -> None:
    """The child: run what the parent sends until told to stop or it goes away."""
    channel = socket.socket(fileno=fd)
    for module in preload:
        importlib.import_module(module)
    conn: sqlite3.Connection | None = None
    identity: FileIdentity | None = None
    while True:
        try:
            func, args = _receive(channel)
        except (EOFError, OSError):
            break
        try:
            if func is _connect:
                conn = _open(path, *args)
                identity = FileIdentity.of(path)
                result: Any = None
            else:
                if identity is not None:  # before: nothing goes into a moved file
                    identity.check()
                result = func(conn, *args)
                if identity is not None:  # after: a move meanwhile is not acknowledged
                    identity.check()
            reply = pickle.dumps((True, result), _PROTOCOL)
        except BaseException as err:  # sent back and raised in the parent
            try:
                reply = pickle.dumps((False, err), _PROTOCOL)
            except Exception:  # an exception that does not pickle still gets there
                reply = pickle.dumps((False, StoreError(f"{type(err).__name__}: {err}")))
        try:
            channel.sendall(_HEADER.pack(len(reply)) + reply)
        except OSError:
            break
        if func is _stop:
            break
    if conn is not None:
        conn.close()
    channel.close()


def _receive(channel: socket.socket) -> Any:
    (size,) = _HEADER.unpack(_read_exactly(channel, _HEADER.size))
    return pickle.loads(_read_exactly(channel, size))


def _read_exactly(channel: socket.socket, size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = channel.recv(min(left, 1 << 20))
        if not chunk:
            raise EOFError("the parent closed the channel")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _open(path: str, pragmas: Sequence[str], create: bool = True) -> sqlite3.Connection:
    if create:
        conn = sqlite3.connect(path, isolation_level=None)
    else:  # a restart: the file must be the one there was, never a new empty one
        uri = Path(path).absolute().as_uri() + "?mode=rw"
        conn = sqlite3.connect(uri, isolation_level=None, uri=True)
    try:
        for pragma in pragmas:
            conn.execute(pragma)
    except BaseException:
        conn.close()
        raise
    return conn


def _connect(conn: Any, pragmas: Sequence[str], create: bool) -> None:  # handled by _serve
    raise AssertionError("handled in _serve")


def _stop(conn: Any) -> None:
    return None


__all__ = ["ProcessWriter", "WriterProcessDied"]
