"""What both platform clients share: rate limiting and jittered exponential backoff."""

from __future__ import annotations

import asyncio
import random
import time


class RateLimiter:
    """A leaky bucket: at most ``rate`` calls a second on average, ``burst`` at once.

    One per (platform, shop): TikTok limits per shop and API, Shoplazza about
    2 requests a second per store (PLAT-5)."""

    def __init__(self, rate: float, burst: int = 1) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._updated = time.monotonic()
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        async with self._lock:
            while True:
                now = time.monotonic()
                self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
                self._updated = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                await asyncio.sleep((1 - self._tokens) / self.rate)


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Exponential backoff with jitter: uniform in [ceiling/2, ceiling]."""
    ceiling = min(cap, base * (2**attempt))
    return rng.uniform(ceiling / 2, ceiling)


class PlatformError(Exception):
    """A platform answered with an error. ``retryable`` says whether waiting helps."""

    def __init__(
        self,
        platform: str,
        code: int | str,
        message: str,
        *,
        retryable: bool,
        status: int | None = None,
    ) -> None:
        super().__init__(f"{platform} error {code}: {message}")
        self.platform = platform
        self.code = code
        self.message = message
        self.retryable = retryable
        self.status = status
