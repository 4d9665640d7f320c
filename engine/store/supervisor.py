"""Keeping the writer process alive (ENG-12, docs/health.md).

`WriterSupervisor` waits for the store's writer process to die, starts a new
one, and has the bus read its entities again. While the writer is down every
write fails at once with a `StoreError` (a receiver answers 503), so nothing
is acknowledged that is not committed. A commit cut off by the death may or
may not have landed; the platform's retry of the same webhook is then either
recorded or recognised as a duplicate by its event id.

Restarts are bounded: a writer that keeps dying (a full disk, a broken
database, a missing file) is not restarted forever. Past the budget the
supervisor gives up and says so (`failure`, `wait_failed`); `serve` then exits
non-zero so that its process manager, which sees more than we do, decides.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from engine.bus import EventBus
from engine.logs import get_logger
from engine.store.process_writer import ProcessWriter
from engine.store.protocol import Store
from engine.store.writer import Writer

log = get_logger("channelsync.supervisor")


@runtime_checkable
class HasWriter(Protocol):
    """A store whose writes go through a writer that may run in a process of its own."""

    @property
    def writer(self) -> Writer | ProcessWriter: ...

    async def restart_writer(self) -> None: ...


class WriterSupervisor:
    """Restart a dead writer process, at most ``max_restarts`` times in any
    ``window`` seconds, waiting ``delay`` seconds before the first restart
    of a run of failures and twice as long before each next one."""

    def __init__(
        self,
        store: Store,
        bus: EventBus,
        *,
        max_restarts: int = 5,
        window: float = 60.0,
        delay: float = 0.05,
        monotonic: Callable[[], float] = time.monotonic,
        on_restart: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self.bus = bus
        self.max_restarts = max_restarts
        self.window = window
        self.delay = delay
        self._monotonic = monotonic
        # Told of each restart (the engine's metrics count them).
        self._on_restart = on_restart
        self._restarted_at: list[float] = []
        self._task: asyncio.Task[None] | None = None
        self._failed = asyncio.Event()
        self.failure: str | None = None

    @property
    def supervises(self) -> bool:
        """Whether there is a process to supervise (a thread writer has none)."""
        return isinstance(self.store, HasWriter) and isinstance(self.store.writer, ProcessWriter)

    def writer_report(self) -> dict[str, Any]:
        """The writer's health as `/health/ready` shows it: its kind (process,
        thread, or none for a store without one), pid and restarts, and
        "failing" with the reason once it died or the supervisor gave up."""
        if self.failure is not None:
            return {"status": "failing", "error": self.failure}
        if not isinstance(self.store, HasWriter):
            return {"kind": "none", "status": "ok"}
        writer = self.store.writer
        report: dict[str, Any]
        if isinstance(writer, ProcessWriter):
            report = {"kind": "process", "pid": writer.pid, "restarts": writer.restarts}
            if writer.gone is not None:
                return {**report, "status": "failing", "error": writer.gone}
        else:
            report = {"kind": "thread"}
        if writer.last_failure is not None:
            return {**report, "status": "failing", "error": writer.last_failure}
        return {**report, "status": "ok"}

    def start(self) -> None:
        if self._task is None and self.supervises:
            self._task = asyncio.create_task(self._run(), name="channelsync-writer-supervisor")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def wait_failed(self) -> str:
        """Return (why) once the supervisor has given up on the writer."""
        await self._failed.wait()
        return self.failure or "the writer could not be kept running"

    async def _run(self) -> None:
        store = self.store
        assert isinstance(store, HasWriter)
        writer = store.writer
        assert isinstance(writer, ProcessWriter)
        failures_in_a_row = 0
        while True:
            reason = await writer.wait_gone()
            now = self._monotonic()
            self._restarted_at = [t for t in self._restarted_at if now - t < self.window]
            if len(self._restarted_at) >= self.max_restarts:
                self.failure = (
                    f"the writer process failed {len(self._restarted_at) + 1} times"
                    f" within {self.window:g} s; last: {reason}"
                )
                log.critical("writer given up", reason=self.failure)
                self._failed.set()
                return
            self._restarted_at.append(now)
            log.error("writer process died", reason=reason, restarts=len(self._restarted_at))
            await asyncio.sleep(self.delay * 2**failures_in_a_row)
            try:
                await store.restart_writer()
            except Exception as err:  # still gone: the next round counts it and waits longer
                failures_in_a_row += 1
                log.error("writer restart failed", error=str(err))
                continue
            failures_in_a_row = 0
            self.bus.resync()
            if self._on_restart is not None:
                self._on_restart()
            log.warning("writer process restarted", pid=writer.pid, restarts=writer.restarts)


__all__ = ["HasWriter", "WriterSupervisor"]
