"""A PostgreSQL commit's round trips, on a thread and a connection of their own.

An engine's event loop steps batches of events in runs of a hundred
milliseconds and more. A commit awaited on that loop waited for it at every
round trip (BEGIN, the guards, the numbers, each insert, COMMIT), so a
worker's Python and its database work took turns instead of overlapping
(docs/scaling.md, "Projections"). Here a commit needs the loop once, to hear
that it is done: on the blocking connection of `CommitThread` the store's
commit takes the batch's sequence numbers, builds the rows and their JSON,
and sends the whole transaction (BEGIN, the guards' statements, the rows,
COMMIT) in pipeline mode, one round trip (`run_transaction`). A thread
waiting on its socket releases the GIL, so the loop steps meanwhile.

Commit guards (`CommitGuard`) are therefore statements, not code run inside
the transaction: a guard says, on the loop and before the transaction opens,
what to send with it (or raises to refuse the commit at once), and turns the
database error its statements raise into its own exception.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import psycopg
from psycopg import pq

from engine.store.postgres_base import connect_blocking
from engine.store.rows import Batch

# One statement of a commit's transaction: its SQL and its parameters.
Statement = tuple[str, Sequence[Any]]
# One statement run once for each of its rows of parameters (``executemany``).
Repeated = tuple[str, Sequence[Sequence[Any]]]
Result = TypeVar("Result")


def _no_refusal(error: psycopg.Error) -> Exception | None:
    return None


@dataclass(frozen=True)
class CommitGuard:
    """A check every commit passes, in its transaction.

    ``statements(batch)`` runs on the event loop before the transaction
    opens and gives what to send ahead of the batch's rows; raising refuses
    the commit (the exception reaches the caller unchanged). A statement that
    raises in the database rolls everything back; ``refusal(error)`` turns
    that error into the guard's own exception (None: not the guard's)."""

    statements: Callable[[Batch], Sequence[Statement]]
    refusal: Callable[[psycopg.Error], Exception | None] = field(default=_no_refusal)


def refusal_of(guards: Sequence[CommitGuard], error: psycopg.Error) -> Exception | None:
    """The first guard's exception for ``error``, if a guard claims it."""
    for guard in guards:
        if (mapped := guard.refusal(error)) is not None:
            return mapped
    return None


def run_transaction(
    conn: psycopg.Connection[Any],
    statements: Sequence[Statement],
    repeated: Sequence[Repeated] = (),
) -> None:
    """``statements``, then ``repeated``, in one transaction sent in one
    round trip; if one fails, none is kept and its error is raised."""
    try:
        with conn.pipeline(), conn.cursor() as cursor:
            cursor.execute("BEGIN")
            for sql, params in statements:
                cursor.execute(sql, params)
            for sql, rows in repeated:
                cursor.executemany(sql, rows)
            cursor.execute("COMMIT")
    except BaseException:
        # The failed transaction stays open on the session until rolled back.
        if not conn.closed and conn.info.transaction_status != pq.TransactionStatus.IDLE:
            with contextlib.suppress(psycopg.Error):
                conn.execute("ROLLBACK")
        raise


def take_numbers(conn: psycopg.Connection[Any], count: int) -> list[int]:
    """``count`` numbers of the log's sequence, rising. Numbers are never
    handed out twice, even when the commit that took them rolls back (a gap)."""
    cursor = conn.execute("SELECT nextval('event_seq') FROM generate_series(1, %s)", (count,))
    return sorted(row[0] for row in cursor.fetchall())


class CommitThread:
    """The store's commit connection and the one thread that uses it.

    The thread is a daemon: a process ending while the server does not
    answer is not held up by it. A connection the server dropped fails the
    call under way and is opened again by the next one."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._conn: psycopg.Connection[Any] | None = None
        self._calls: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    async def run(self, work: Callable[[psycopg.Connection[Any]], Result]) -> Result:
        """``work(connection)`` on the thread; its result or its exception."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[Result] = loop.create_future()

        def call() -> None:
            try:
                settled: tuple[Any, BaseException | None] = (work(self._live()), None)
            except BaseException as error:  # handed to the awaiting task
                settled = (None, error)
            # A loop closed meanwhile has nobody to tell; the thread serves on.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_settle, done, *settled)

        if self._thread is None:
            self._thread = threading.Thread(
                target=self._serve, name="channelsync-commit", daemon=True
            )
            self._thread.start()
        self._calls.put(call)
        return await done

    def _live(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = connect_blocking(self._url)
        return self._conn

    def _serve(self) -> None:
        while (call := self._calls.get()) is not None:
            call()
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()

    async def close(self) -> None:
        """Close the connection once the calls queued before have run."""
        if self._thread is not None:
            self._calls.put(None)
            await asyncio.to_thread(self._thread.join)
            self._thread = None


def _settle(done: asyncio.Future[Any], outcome: Any, error: BaseException | None) -> None:
    if done.cancelled():
        return
    if error is not None:
        done.set_exception(error)
    else:
        done.set_result(outcome)


__all__ = [
    "CommitGuard",
    "CommitThread",
    "Repeated",
    "Statement",
    "refusal_of",
    "run_transaction",
    "take_numbers",
]
