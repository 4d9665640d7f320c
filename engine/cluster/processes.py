"""N worker processes on one machine, kept running (`serve --workers N`).

Python runs one event loop on one core; a machine with more cores runs more
worker processes, each a cluster member of its own (own worker id, own
leases). The supervisor starts them, starts a replacement for one that dies
(after a short pause, and not more than ``max_restarts`` within a minute, so
a worker that cannot start does not spin), and on stop sends each SIGTERM,
waiting (30 s: a worker drains its feeds and stops its engine within 25 s)
for it to give its leases back before it kills what is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections import deque
from collections.abc import Sequence

from engine.logs import get_logger

log = get_logger("channelsync.cluster.processes")

RESTART_DELAY = 0.5
RESTART_WINDOW = 60.0


class WorkersFailed(RuntimeError):
    """Workers died more often than the supervisor restarts them."""


class Supervisor:
    """Runs ``count`` copies of the command ``argv`` until stopped."""

    def __init__(
        self,
        argv: Sequence[str],
        count: int,
        *,
        max_restarts: int = 10,
        stop_timeout: float = 30.0,
    ) -> None:
        if count < 1:
            raise ValueError(f"--workers must be at least 1, not {count}")
        self.argv = list(argv)
        self.count = count
        self.max_restarts = max_restarts
        self.stop_timeout = stop_timeout
        self.children: list[asyncio.subprocess.Process] = []
        self._restarts: deque[float] = deque()

    async def run(self, stop: asyncio.Event) -> None:
        """Start the workers, replace those that die, stop them all on ``stop``;
        `WorkersFailed` when they die faster than ``max_restarts`` a minute."""
        slots: list[asyncio.Task[int]] = []
        try:
            for slot in range(self.count):
                slots.append(await self._start(slot))
            stopping = asyncio.ensure_future(stop.wait())
            while not stop.is_set():
                await asyncio.wait([stopping, *slots], return_when=asyncio.FIRST_COMPLETED)
                for slot, task in enumerate(slots):
                    if task.done() and not stop.is_set():
                        log.warning("worker process ended", slot=slot, status=task.result())
                        self._count_restart()
                        await asyncio.sleep(RESTART_DELAY)
                        slots[slot] = await self._start(slot)
        finally:
            await self._stop_all()

    def _count_restart(self) -> None:
        now = time.monotonic()
        self._restarts.append(now)
        while self._restarts and self._restarts[0] < now - RESTART_WINDOW:
            self._restarts.popleft()
        if len(self._restarts) > self.max_restarts:
            raise WorkersFailed(
                f"worker processes died {len(self._restarts)} times within"
                f" {RESTART_WINDOW:.0f} s; giving up"
            )

    async def _start(self, slot: int) -> asyncio.Task[int]:
        child = await asyncio.create_subprocess_exec(*self.argv)
        if slot < len(self.children):
            self.children[slot] = child
        else:
            self.children.append(child)
        log.info("worker process started", slot=slot, pid=child.pid)
        return asyncio.ensure_future(child.wait())

    async def _stop_all(self) -> None:
        live = [child for child in self.children if child.returncode is None]
        for child in live:
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(signal.SIGTERM)
        waits = [asyncio.ensure_future(child.wait()) for child in live]
        if not waits:
            return
        _done, late = await asyncio.wait(waits, timeout=self.stop_timeout)
        for child in live:
            if child.returncode is None:
                log.warning("worker process did not stop; killed", pid=child.pid)
                with contextlib.suppress(ProcessLookupError):
                    child.kill()
        if late:
            await asyncio.gather(*late, return_exceptions=True)


__all__ = ["Supervisor", "WorkersFailed"]
