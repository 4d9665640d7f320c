"""`/health/live` and `/health/ready`: what the process can honestly say (ENG-12).

Live: the process and its event loop answer (and the writer has not been given
up on: then the process is about to exit). Ready: every check that decides
whether a webhook sent now would be durably recorded and acted on passes:

- ``store``: the database answers a read within a timeout, and its path
  still names the file that was opened (SQLite would go on writing to a
  removed file without an error);
- ``writer``: the writer is alive (a process: running; a thread: its last
  write did not fail for a reason of the database);
- ``outbox``: commands that are due but not carried out are fewer than a
  limit, and the oldest of them has waited less than a limit.

``platforms`` are reported too (each client's recent calls: the last answer,
the failures in a row) without deciding readiness: webhooks are still recorded
while a platform is down and the outbox holds the work, so taking the receiver
out of a load balancer would only lose deliveries. When the outage lasts, the
outbox check says so. docs/health.md gives the reasoning.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import httpx

from engine.runtime import Engine
from engine.store.supervisor import WriterSupervisor
from engine.store.urls import is_store_url
from engine.store.writer import FileIdentity

# Failed calls in a row after which a platform is reported unreachable.
UNREACHABLE_AFTER = 3


@dataclass
class HealthLimits:
    """When the outbox backlog makes the service not ready."""

    outbox_backlog: int = 1000  # commands due and not yet carried out
    outbox_age: float = 900.0  # seconds the oldest due command has waited
    store_timeout: float = 2.0  # seconds a read of the database may take


class Reachability:
    """What one platform's client saw on its recent calls."""

    def __init__(self, platform: str) -> None:
        self.platform = platform
        self.calls = 0
        self.failures_in_a_row = 0
        self.last_ok: float | None = None
        self.last_failure: float | None = None
        self.last_error: str | None = None

    def answered(self, status: int) -> None:
        self.calls += 1
        if status >= 500:
            self._failed(f"HTTP {status}")
            return
        self.failures_in_a_row = 0
        self.last_ok = time.time()

    def unreachable(self, error: BaseException) -> None:
        self.calls += 1
        self._failed(type(error).__name__)

    def _failed(self, why: str) -> None:
        self.failures_in_a_row += 1
        self.last_failure = time.time()
        self.last_error = why

    def report(self) -> dict[str, Any]:
        if self.calls == 0:
            status = "unknown"
        elif self.failures_in_a_row >= UNREACHABLE_AFTER:
            status = "unreachable"
        else:
            status = "ok"
        return {
            "status": status,
            "calls": self.calls,
            "failures_in_a_row": self.failures_in_a_row,
            "last_ok": self.last_ok,
            "last_failure": self.last_failure,
            "last_error": self.last_error,
        }


class ObservedClient(httpx.AsyncClient):
    """An httpx client that tells a `Reachability` how each call went (it
    sees every request the platform clients make: they all go through send)."""

    def __init__(self, reachability: Reachability, **options: Any) -> None:
        super().__init__(**options)
        self.reachability = reachability

    async def send(self, request: httpx.Request, **options: Any) -> httpx.Response:
        try:
            response = await super().send(request, **options)
        except httpx.TransportError as error:
            self.reachability.unreachable(error)
            raise
        self.reachability.answered(response.status_code)
        return response


class HealthChecks:
    def __init__(
        self,
        engine: Engine,
        supervisor: WriterSupervisor | None = None,
        platforms: dict[str, Reachability] | None = None,
        limits: HealthLimits | None = None,
    ) -> None:
        self.engine = engine
        self.supervisor = supervisor
        self.platforms = platforms or {}
        self.limits = limits or HealthLimits()
        # A PostgreSQL store has no file that could be deleted or replaced.
        path = engine.store.path
        self._identity = None if is_store_url(path) else FileIdentity.of(path)

    def live(self) -> tuple[bool, dict[str, Any]]:
        if self.supervisor is not None and self.supervisor.failure is not None:
            return False, {"status": "stopping", "reason": self.supervisor.failure}
        return True, {"status": "live"}

    async def ready(self) -> tuple[bool, dict[str, Any]]:
        checks = {
            "store": await self._store(),
            "writer": self._writer(),
            "outbox": await self._outbox(),
        }
        ready = all(check["status"] == "ok" for check in checks.values())
        return ready, {
            "status": "ok" if ready else "unavailable",
            "checks": checks,
            "platforms": {name: r.report() for name, r in sorted(self.platforms.items())},
        }

    async def _store(self) -> dict[str, Any]:
        try:
            if self._identity is not None:
                self._identity.check()
            await asyncio.wait_for(
                self.engine.store.schema_version(),
                self.limits.store_timeout,
            )
        except TimeoutError:
            return {"status": "failing", "error": f"no answer in {self.limits.store_timeout:g} s"}
        except Exception as error:
            return {"status": "failing", "error": f"{type(error).__name__}: {error}"}
        return {"status": "ok"}

    def _writer(self) -> dict[str, Any]:
        if self.supervisor is None:
            return {"kind": "unsupervised", "status": "ok"}
        return self.supervisor.writer_report()

    async def _outbox(self) -> dict[str, Any]:
        now = self.engine.clock.now()
        try:
            due_now = await asyncio.wait_for(
                self.engine.store.outbox_backlog(now), self.limits.store_timeout
            )
        except (TimeoutError, Exception) as error:
            return {"status": "failing", "error": f"{type(error).__name__}: {error}"}
        due, oldest = due_now.count, due_now.oldest_available_at
        age = max(0.0, now - oldest) if oldest is not None else 0.0
        report = {
            "due": due,
            "oldest_due_seconds": round(age, 3),
            "limit_due": self.limits.outbox_backlog,
            "limit_seconds": self.limits.outbox_age,
        }
        over = due > self.limits.outbox_backlog or age > self.limits.outbox_age
        return {**report, "status": "failing" if over else "ok"}


__all__ = ["HealthChecks", "HealthLimits", "ObservedClient", "Reachability"]
