"""The Shoplazza OpenAPI client: Access-Token header, ~2 requests/s per store, 429 backoff."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping
from typing import Any

import httpx
from pydantic_core import from_json

from adapters.http import PlatformError, RateLimiter, backoff_delay
from engine.logs import get_logger

log = get_logger("channelsync.shoplazza")
API_VERSION = "2026-01"


class ShoplazzaError(PlatformError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(
            "Shoplazza", status, message, retryable=status == 429 or status >= 500, status=status
        )


class ShoplazzaClient:
    def __init__(
        self,
        base_url: str,
        access_token: str,
        *,
        http: httpx.AsyncClient | None = None,
        rate: float = 2.0,
        burst: int = 4,
        attempts: int = 4,
        base_delay: float = 0.25,
        max_delay: float = 5.0,
        rng: random.Random | None = None,
    ) -> None:
        """``base_url`` is the store's API root, ``https://{store}.myshoplaza.com``
        in production, a sandbox's address in tests."""
        self.base_url = base_url.rstrip("/")
        self.access_token = access_token
        self.http = http or httpx.AsyncClient(timeout=10.0)
        self.limiter = RateLimiter(rate, burst)
        self.attempts = attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._rng = rng or random.Random()

    async def aclose(self) -> None:
        await self.http.aclose()

    async def call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        url = f"{self.base_url}/openapi/{API_VERSION}{path}"
        for attempt in range(self.attempts):
            await self.limiter.acquire()
            try:
                response = await self.http.request(
                    method,
                    url,
                    params=params,
                    json=body,
                    headers={"Access-Token": self.access_token},
                )
            except httpx.TransportError as error:
                if attempt == self.attempts - 1:
                    raise ShoplazzaError(599, str(error)) from error
                await asyncio.sleep(
                    backoff_delay(attempt, self.base_delay, self.max_delay, self._rng)
                )
                continue
            if response.status_code < 300:
                return from_json(response.content) if response.content else {}
            refused = ShoplazzaError(response.status_code, response.text[:300])
            if not refused.retryable or attempt == self.attempts - 1:
                raise refused
            delay = backoff_delay(attempt, self.base_delay, self.max_delay, self._rng)
            log.info(
                "shoplazza retry", path=path, status=response.status_code, retry_in=round(delay, 3)
            )
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def product(self, product_id: str) -> dict[str, Any]:
        return (await self.call("GET", f"/products/{product_id}"))["product"]

    async def collection_products(self, collection_id: str) -> list[dict[str, Any]]:
        data = await self.call("GET", f"/collections/{collection_id}/products")
        return data.get("products", [])

    async def shop(self) -> dict[str, Any]:
        """The store this client's access token belongs to; 401 once the app is
        uninstalled (the token is revoked with it)."""
        return (await self.call("GET", "/shop")).get("shop", {})

    async def carriers(self) -> list[dict[str, Any]]:
        return (await self.call("GET", "/tracking/carriers")).get("tracking_carriers", [])
