"""The TikTok Shop API client: signing (PLAT-4), tokens (CONN-5), retries (PLAT-5)."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic_core import from_json, to_json

from adapters.http import PlatformError, RateLimiter, backoff_delay
from adapters.tiktok_shop.credentials import Credentials, CredentialStore
from adapters.tiktok_shop.signing import encode_query, sign_encoded
from engine.clock import Clock
from engine.logs import get_logger

log = get_logger("channelsync.tiktok")
# httpx logs every request's URL at INFO, and TikTok's token routes carry the
# app secret and the OAuth code in the query (CONN-7): keep those lines out.
logging.getLogger("httpx").setLevel(logging.WARNING)

ACCESS_TOKEN_EXPIRED = 105002
BAD_SIGN = 106001
BAD_CREDENTIALS = 36009004
RATE_LIMITED = 36009002
PRODUCT_NOT_FOUND = 12052032
ORDER_ON_HOLD = 21011044
ALREADY_SHIPPED = 21008099
DUPLICATE_TRACKING = 21011025
TRACKING_MISMATCH = 21004015
ORDER_IS_FBT = 21008025
RETRYABLE_CODES = frozenset({RATE_LIMITED})
# The OAuth code is traded on token/get; a refresh has its own route (CONN-5).
TOKEN_GET = "/api/v2/token/get"
TOKEN_REFRESH = "/api/v2/token/refresh"
REFRESH_AHEAD = 3600  # refresh an access token this long before it expires (CONN-5)
# How long a refused refresh looks for tokens another process stored: its
# refresh answer may still be on the way to the shared store.
_REFRESHED_ELSEWHERE_WAITS = (0.0, 0.2, 0.5, 1.0)


class TikTokError(PlatformError):
    def __init__(self, code: int | str, message: str, *, status: int | None = None) -> None:
        retryable = code in RETRYABLE_CODES or status == 429 or (status or 0) >= 500
        super().__init__("TikTok", code, message, retryable=retryable, status=status)


@dataclass(frozen=True)
class Grant:
    """What an OAuth code was traded for: the tokens (for the adapter's table)
    and what the event log may keep (no token)."""

    credentials: Credentials
    public: dict[str, Any]


class TikTokClient:
    def __init__(
        self,
        base_url: str,
        auth_url: str,
        app_key: str,
        app_secret: str,
        credentials: CredentialStore,
        clock: Clock,
        *,
        http: httpx.AsyncClient | None = None,
        rate_per_shop: float = 50.0,
        attempts: int = 4,
        base_delay: float = 0.2,
        max_delay: float = 5.0,
        rng: random.Random | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.auth_url = auth_url.rstrip("/")
        self.app_key = app_key
        self.app_secret = app_secret
        self.credentials = credentials
        self.clock = clock
        self.http = http or httpx.AsyncClient(timeout=10.0)
        self.rate_per_shop = rate_per_shop
        self.attempts = attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._rng = rng or random.Random()
        self._limiters: dict[str, RateLimiter] = {}
        self._refreshing: dict[str, asyncio.Lock] = {}

    async def aclose(self) -> None:
        await self.http.aclose()

    # ----------------------------------------------------------------- OAuth

    async def exchange_code(self, shop: str, auth_code: str) -> Grant:
        """Trade an OAuth code for tokens. Nothing is stored: the tokens become
        the shop's only once the connection chart accepts the authorization
        (CONN-7, `adapters.tiktok_shop.oauth`)."""
        data = await self._token_call(
            TOKEN_GET,
            {
                "app_key": self.app_key,
                "app_secret": self.app_secret,
                "auth_code": auth_code,
                "grant_type": "authorized_code",
            },
        )
        try:
            shops = await self._authorized_shops(data["access_token"])
            if not shops:
                raise TikTokError("no_shop", "no TikTok Shop on this account: create one first")
            first = shops[0]
            credentials = Credentials(
                shop,
                str(first["id"]),
                first.get("cipher", ""),
                data["access_token"],
                int(data["access_token_expire_in"]),
                data["refresh_token"],
                int(data["refresh_token_expire_in"]),
            )
        except (KeyError, TypeError, ValueError) as error:
            # A token answer without its fields is TikTok's fault, not the merchant's.
            raise TikTokError("bad_answer", f"token answer lacks {error}", status=502) from None
        public = {
            "shop_id": credentials.tiktok_shop_id,
            "shop_cipher": credentials.shop_cipher,
            "shop_name": first.get("name", ""),
            "seller_base_region": data.get("seller_base_region") or first.get("region", ""),
            "access_token_expire_in": credentials.access_token_expire_in,
            "refresh_token_expire_in": credentials.refresh_token_expire_in,
            "granted_scopes": data.get("granted_scopes", []),
        }
        return Grant(credentials, public)

    async def refresh(self, shop: str, *, replacing: str | None = None) -> Credentials:
        """New tokens for ``shop`` (CONN-5). TikTok's refresh token works once, so
        this process refreshes a shop one call at a time; ``replacing`` is the
        access token the caller found due or refused, and tokens another call
        stored meanwhile are returned instead of refreshing again."""
        async with self._refreshing.setdefault(shop, asyncio.Lock()):
            current = await self.credentials.get(shop)
            if current is None:
                raise TikTokError("no_credentials", f"{shop} was never authorized")
            if replacing is not None and current.access_token != replacing:
                return current
            try:
                data = await self._token_call(
                    TOKEN_REFRESH,
                    {
                        "app_key": self.app_key,
                        "app_secret": self.app_secret,
                        "refresh_token": current.refresh_token,
                        "grant_type": "refresh_token",
                    },
                )
            except TikTokError as error:
                if error.code != BAD_CREDENTIALS:
                    raise
                return await self._refreshed_elsewhere(current, error)
            renewed = Credentials(
                shop,
                current.tiktok_shop_id,
                current.shop_cipher,
                data["access_token"],
                int(data["access_token_expire_in"]),
                data["refresh_token"],
                int(data["refresh_token_expire_in"]),
            )
            await self.credentials.save(renewed)
        log.info(
            "access token refreshed",
            entity=shop,
            access_token_expire_in=renewed.access_token_expire_in,
        )
        return renewed

    async def _refreshed_elsewhere(self, spent: Credentials, refused: TikTokError) -> Credentials:
        """TikTok refused ``spent``'s refresh token: another process sharing the
        credentials (a cluster's other worker) may have used it a moment ago.
        Its tokens, once stored; TikTok's refusal if none come."""
        for wait in _REFRESHED_ELSEWHERE_WAITS:
            await asyncio.sleep(wait)
            stored = await self.credentials.get(spent.shop)
            if stored is not None and stored.refresh_token != spent.refresh_token:
                log.info("access token refreshed by another process", entity=spent.shop)
                return stored
        raise refused

    async def _token_call(self, route: str, params: dict[str, str]) -> dict[str, Any]:
        response = await self.http.get(f"{self.auth_url}{route}", params=params)
        body = _json(response)
        if response.status_code != 200 or body.get("code") != 0:
            raise TikTokError(
                body.get("code", response.status_code),
                body.get("message", ""),
                status=response.status_code,
            )
        data = body.get("data")
        if not isinstance(data, dict):
            raise TikTokError("bad_answer", "token answer without data", status=502)
        return data

    async def _authorized_shops(self, access_token: str) -> list[dict[str, Any]]:
        data = await self._signed(
            "GET", "/authorization/202309/shops", access_token, None, {}, None
        )
        return data.get("shops", [])

    # ----------------------------------------------------------------- calls

    async def call(
        self,
        shop: str,
        method: str,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        body: Mapping[str, Any] | None = None,
        files: Mapping[str, tuple[str, bytes, str]] | None = None,
        form: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """A signed call on behalf of ``shop``: rate limited, retried with jittered
        backoff on 429/5xx/36009002, token refreshed ahead of expiry and on 105002.
        ``files``/``form`` make it a multipart call (Upload Product Image), whose
        body TikTok leaves out of the signature."""
        limiter = self._limiters.setdefault(shop, RateLimiter(self.rate_per_shop, 5))
        refreshed = False
        for attempt in range(self.attempts):
            credentials = await self.credentials.get(shop)
            if credentials is None:
                raise TikTokError("no_credentials", f"{shop} has no TikTok authorization")
            if credentials.access_token_expire_in - self.clock.now() < REFRESH_AHEAD:
                credentials = await self.refresh(shop, replacing=credentials.access_token)
            await limiter.acquire()
            try:
                return await self._signed(
                    method,
                    path,
                    credentials.access_token,
                    credentials.shop_cipher,
                    dict(query or {}),
                    body,
                    files=files,
                    form=form,
                )
            except TikTokError as error:
                if error.code == ACCESS_TOKEN_EXPIRED and not refreshed:
                    await self.refresh(shop, replacing=credentials.access_token)
                    refreshed = True
                    continue
                if not error.retryable or attempt == self.attempts - 1:
                    raise
                delay = backoff_delay(attempt, self.base_delay, self.max_delay, self._rng)
                log.info(
                    "tiktok retry",
                    entity=shop,
                    path=path,
                    code=error.code,
                    retry_in=round(delay, 3),
                )
                await asyncio.sleep(delay)
            except httpx.TransportError as error:
                if attempt == self.attempts - 1:
                    raise TikTokError("transport", str(error)) from error
                await asyncio.sleep(
                    backoff_delay(attempt, self.base_delay, self.max_delay, self._rng)
                )
        raise AssertionError("unreachable")

    async def _signed(
        self,
        method: str,
        path: str,
        access_token: str,
        shop_cipher: str | None,
        query: dict[str, Any],
        body: Mapping[str, Any] | None,
        *,
        files: Mapping[str, tuple[str, bytes, str]] | None = None,
        form: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        query = {**query, "app_key": self.app_key, "timestamp": int(self.clock.now())}
        if shop_cipher:
            query["shop_cipher"] = shop_cipher
        query.pop("sign", None)  # the signature is computed here, never passed in
        headers = {"x-tts-access-token": access_token}
        # One encoding, both signed and sent (docs/platforms.md, "Signing = sending").
        pairs = encode_query(query)
        if files is not None:
            pairs.append(("sign", sign_encoded(self.app_secret, path, pairs, multipart=True)))
            response = await self.http.request(
                method,
                f"{self.base_url}{path}",
                params=tuple(pairs),
                files=dict(files),
                data=dict(form or {}),
                headers=headers,
            )
        else:
            raw = to_json(body) if body is not None else b""
            pairs.append(("sign", sign_encoded(self.app_secret, path, pairs, raw)))
            response = await self.http.request(
                method,
                f"{self.base_url}{path}",
                params=tuple(pairs),
                content=raw or None,
                headers={**headers, "content-type": "application/json"},
            )
        payload = _json(response)
        if response.status_code == 429:
            raise TikTokError(RATE_LIMITED, "rate limited", status=429)
        if response.status_code >= 500:
            raise TikTokError(response.status_code, "server error", status=response.status_code)
        if payload.get("code", -1) != 0:
            raise TikTokError(
                payload.get("code", response.status_code),
                payload.get("message", ""),
                status=response.status_code,
            )
        return payload.get("data") or {}


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        value = from_json(response.content) if response.content else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
