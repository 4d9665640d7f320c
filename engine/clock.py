"""Time as an injectable dependency (ENG-7).

The engine never reads the wall clock directly: timers, `received_at` stamps and
the outbox's retry schedule all ask a `Clock`. Tests pass a `FakeClock` and move
time forward explicitly, so nothing in the suite sleeps to wait for a timer.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """Anything that tells the current time as unix seconds."""

    def now(self) -> float: ...


class SystemClock:
    """The real wall clock."""

    def now(self) -> float:
        return time.time()


class FakeClock:
    """A clock that only moves when told to; for tests and simulations."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = float(start)

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError("a FakeClock never moves backwards")
        self._now += seconds
        return self._now

    def set(self, timestamp: float) -> None:
        if timestamp < self._now:
            raise ValueError("a FakeClock never moves backwards")
        self._now = float(timestamp)
