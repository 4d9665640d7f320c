"""A webhook sender with fault injection: drop, duplicate, reorder; retries on failure."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from engine.logs import get_logger

log = get_logger("channelsync.sandbox")


@dataclass
class Faults:
    """Fractions (0..1) of webhooks dropped, duplicated or held back and sent
    after the next one; of API calls answered 500; and an API rate limit."""

    drop: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    api_failure: float = 0.0
    rate_limit_per_second: float = 1000.0


class WebhookSender:
    def __init__(
        self,
        url: str | None,
        sign: Callable[[bytes], dict[str, str]],
        faults: Faults,
        rng: random.Random,
        retries: int = 4,
    ) -> None:
        self.url = url
        self.sign = sign
        self.faults = faults
        self.rng = rng
        self.retries = retries
        self.http = httpx.AsyncClient(timeout=5.0)
        self._queue: list[tuple[bytes, dict[str, str]]] = []
        self._held: tuple[bytes, dict[str, str]] | None = None
        self.sent = self.dropped = self.duplicated = self.failed = 0
        self.acknowledged: list[bytes] = []
        self.undelivered: list[tuple[bytes, dict[str, str]]] = []

    def enqueue(self, body: bytes, headers: dict[str, str] | None = None) -> None:
        if self.url is None:
            return
        if self.rng.random() < self.faults.drop:
            self.dropped += 1
            return
        item = (body, {**(headers or {}), **self.sign(body)})
        if self._held is None and self.rng.random() < self.faults.reorder:
            self._held = item
            return
        self._queue.append(item)
        if self.rng.random() < self.faults.duplicate:
            self.duplicated += 1
            self._queue.append(item)
        if self._held is not None:
            self._queue.append(self._held)
            self._held = None

    async def flush(self) -> int:
        """Deliver everything queued (and anything held back); returns how many."""
        url = self.url
        if url is None:
            return 0  # without a receiver, `enqueue` keeps nothing
        if self._held is not None:
            self._queue.append(self._held)
            self._held = None
        delivered = 0
        while self._queue:
            body, headers = self._queue.pop(0)
            for attempt in range(self.retries + 1):
                try:
                    response = await self.http.post(url, content=body, headers=headers)
                except httpx.TransportError as error:
                    log.warning("webhook not delivered", error=str(error), attempt=attempt)
                    await asyncio.sleep(0.05 * (attempt + 1))
                    continue
                if response.status_code == 200:
                    self.sent += 1
                    delivered += 1
                    self.acknowledged.append(body)
                    break
                await asyncio.sleep(0.05 * (attempt + 1))
            else:
                self.failed += 1
                self.undelivered.append((body, headers))
        return delivered

    def redeliver(self) -> int:
        """Queue again what could not be delivered, as TikTok's later retries do."""
        count = len(self.undelivered)
        self._queue.extend(self.undelivered)
        self.undelivered = []
        return count

    async def aclose(self) -> None:
        await self.http.aclose()
