"""Authenticated OAuth with TikTok Shop (CONN-7).

Authorization starts from the merchant's shop: `begin_authorization` issues a
random `state` nonce bound to the shop, single-use and expiring, and keeps
only its SHA-256 digest. TikTok hands the nonce back on the callback;
`OAuthFlow.complete` consumes it (one transaction: of two callbacks carrying
one nonce, one wins), trades the code for tokens without storing them as the
shop's, and publishes `connection.authorized` under an event id made from a
digest of the code. The tokens wait, staged, and become the shop's
only once the receipt says the connection chart accepted the authorization.
Where the event is recorded is the flow's `Recorder`: `EngineRecorder` (serve:
the engine applies it at once), or a cluster receiver's, which publishes it to
the bus and waits a bounded time for its partition's owner to apply it; not
applied by then, the callback is answered as pending (`CallbackPending`) and
the staged tokens are settled by the workers (`CredentialStore.settle_staged`).
See docs/connection.md (OAuth).
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlencode

import httpx

from adapters.tiktok_shop.client import Grant, TikTokClient, TikTokError
from adapters.tiktok_shop.credentials import CredentialStore
from engine.bus import Receipt
from engine.charts.configuration import is_active
from engine.clock import Clock
from engine.logs import get_logger
from engine.runtime import Engine
from engine.store.errors import StoreError
from engine.store.read_models import ReadModels

log = get_logger("channelsync.oauth")

STATE_TTL = 600.0  # seconds a nonce stays usable, unless configured otherwise
CHART = "shop_connection"
# The authorize step (terms accepted) and the states a new grant may replace
# (``authorized`` with either of its substates; ``active`` and ``expiring`` are
# the same states of a shop still on version 1 of the chart).
AUTHORIZE_FROM = ("terms_accepted", "authorized", "inactive", "active", "expiring")
# secrets.token_urlsafe(32): 43 characters of the URL-safe base64 alphabet.
_STATE_SHAPE = re.compile(r"[A-Za-z0-9_-]{43}")
MAX_CODE = 512
# Used and expired nonces are kept this long, so a late reuse is told why.
_KEEP_SPENT = 86400.0
# The store's record namespace of issued nonces (by digest, bound to a shop).
STATES = "tiktok_shop.oauth_states"
AGAIN = "start the authorization again from the shop (`channelsync shop authorize`)"
UNAVAILABLE = f"the channel's database is unavailable; once it is back, {AGAIN}"


class AuthorizationRefused(Exception):
    """The shop cannot start an authorization now; the message says why."""


class CallbackRefused(Exception):
    """The callback changes nothing; ``status`` is the HTTP answer (4xx, or
    502/503 when TikTok or the store could not be reached)."""

    def __init__(self, status: int, message: str, **details: Any) -> None:
        super().__init__(message)
        self.status = status
        self.details = details


class CallbackPending(Exception):
    """The authorization is recorded but not applied yet (a cluster's workers
    are busy or down): answered 202; its tokens stay staged until it is."""

    def __init__(self, shop: str) -> None:
        super().__init__(
            "the authorization was received and is being completed; the shop shows"
            " it as authorized once the channel has applied it"
        )
        self.shop = shop


class Recorder(Protocol):
    """Where the flow reads nonces and records ``connection.authorized``."""

    @property
    def store(self) -> ReadModels: ...

    @property
    def clock(self) -> Clock: ...

    async def record(
        self, shop: str, event_id: str, payload: Mapping[str, Any], source: str
    ) -> Receipt | None:
        """The receipt of the applied event, or None if it is not applied yet
        (it will be: it is durably on its way)."""
        ...


@dataclass
class EngineRecorder:
    """`serve`'s recorder: the engine in this process applies the event now."""

    engine: Engine

    @property
    def store(self) -> ReadModels:
        return self.engine.store

    @property
    def clock(self) -> Clock:
        return self.engine.clock

    async def record(
        self, shop: str, event_id: str, payload: Mapping[str, Any], source: str
    ) -> Receipt:
        event = self.engine.make_event(
            "connection.authorized", shop, payload, event_id=event_id, source=source
        )
        return await self.engine.publish(event)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def authorize_url(auth_url: str, app_key: str, nonce: str) -> str:
    return f"{auth_url.rstrip('/')}/oauth/authorize?" + urlencode(
        {"app_key": app_key, "state": nonce}
    )


async def begin_authorization(
    store: ReadModels, shop: str, *, auth_url: str, app_key: str, now: float, ttl: float
) -> str:
    """TikTok's authorize URL for ``shop``, carrying a new nonce (CONN-7).
    Raises AuthorizationRefused unless the shop's connection is at the
    authorize step or already authorized (a new grant replaces the old)."""
    if ttl <= 0:
        raise AuthorizationRefused(f"the nonce's life must be positive, not {ttl}")
    entity = await store.entity(shop)
    if entity is None or entity.chart != CHART:
        raise AuthorizationRefused(f"no shop {shop!r}: start setup for it first")
    if not any(is_active(entity.state, state) for state in AUTHORIZE_FROM):
        raise AuthorizationRefused(
            f"{shop} is not at the authorize step: start setup, connect, choose the"
            " account type and accept TikTok's data-usage terms before authorizing"
        )
    nonce = secrets.token_urlsafe(32)
    await store.purge_records(STATES, expired_before=now - _KEEP_SPENT)
    await store.put_record(STATES, digest(nonce), {"shop": shop}, at=now, expires_at=now + ttl)
    log.info("authorization started", entity=shop, expires_at=now + ttl)
    return authorize_url(auth_url, app_key, nonce)


async def consume_state(store: ReadModels, state: str, now: float) -> str:
    """The shop the live nonce ``state`` was issued for; the nonce is spent.
    Anything else raises CallbackRefused (400) and changes nothing."""
    if not _STATE_SHAPE.fullmatch(state):
        raise CallbackRefused(400, f"the state is not one this channel issued: {AGAIN}")
    verdict, record = await store.use_record(STATES, digest(state), now)
    if verdict == "unknown" or record is None:
        raise CallbackRefused(400, f"the state is not one this channel issued: {AGAIN}")
    if verdict == "used":
        raise CallbackRefused(400, f"this authorization link was already used: {AGAIN}")
    if verdict == "expired":
        raise CallbackRefused(400, f"this authorization expired before TikTok answered: {AGAIN}")
    return str(record.value["shop"])


@dataclass
class OAuthFlow:
    """The callback's steps, the same for `serve` and a cluster's receiver;
    ``unavailable``: the recorder's errors that mean "cannot record now" (503)."""

    recorder: Recorder
    tiktok: TikTokClient
    credentials: CredentialStore
    auth_url: str
    app_key: str
    ttl: float = STATE_TTL
    unavailable: tuple[type[Exception], ...] = (StoreError,)

    def __post_init__(self) -> None:
        # One callback at a time per shop, so tokens are promoted in the order
        # their authorizations were recorded.
        self._locks: dict[str, asyncio.Lock] = {}

    async def begin(self, shop: str) -> str:
        return await begin_authorization(
            self.recorder.store,
            shop,
            auth_url=self.auth_url,
            app_key=self.app_key,
            now=self.recorder.clock.now(),
            ttl=self.ttl,
        )

    async def complete(self, state: str | None, code: str | None) -> Receipt:
        """The callback. Returns the receipt of an accepted authorization;
        raises CallbackPending if it is not applied yet, and CallbackRefused
        for anything else, having stored nothing."""
        if not state or not code:
            raise CallbackRefused(400, f"the callback needs both code and state: {AGAIN}")
        if len(code) > MAX_CODE or not code.isprintable():
            raise CallbackRefused(400, f"the code is not one TikTok issues: {AGAIN}")
        try:
            shop = await consume_state(self.recorder.store, state, self.recorder.clock.now())
        except self.unavailable as error:
            raise CallbackRefused(503, UNAVAILABLE) from error
        lock = self._locks.setdefault(shop, asyncio.Lock())
        async with lock:
            return await self._authorize(shop, code)

    async def _authorize(self, shop: str, code: str) -> Receipt:
        bound = log.bind(entity=shop)
        try:
            grant = await self.tiktok.exchange_code(shop, code)
        except TikTokError as error:
            message = str(error.message).replace(code, "[code]")
            if error.retryable or error.code == "transport":
                bound.warning("oauth code not traded", code_error=error.code, status=502)
                raise CallbackRefused(
                    502, f"TikTok did not answer the code exchange properly: {AGAIN}"
                ) from None
            bound.info("oauth code refused by TikTok", code_error=error.code)
            raise CallbackRefused(
                400, f"TikTok refused the authorization ({error.code}: {message}): {AGAIN}"
            ) from None
        except httpx.HTTPError as error:
            bound.warning("oauth code not traded", error=type(error).__name__, status=502)
            raise CallbackRefused(502, f"TikTok could not be reached: {AGAIN}") from None
        # The code itself never enters an id: a digest of it makes the event id.
        event_id = f"oauth:{shop}:{digest(code)[:32]}"
        bound = bound.bind(event_id=event_id)
        try:
            return await self._record(shop, event_id, grant, bound)
        except self.unavailable as error:
            # Whether the event was recorded may be unknown: staged tokens wait
            # for `CredentialStore.settle_staged`, which reads the outcome.
            bound.warning("authorization not settled", error=type(error).__name__)
            raise CallbackRefused(503, UNAVAILABLE) from None

    async def _record(self, shop: str, event_id: str, grant: Grant, bound: Any) -> Receipt:
        await self.credentials.stage(event_id, grant.credentials, self.recorder.clock.now())
        receipt = await self.recorder.record(shop, event_id, grant.public, "tiktok-oauth")
        if receipt is None:
            bound.info("authorization pending")
            raise CallbackPending(shop)
        if receipt.outcome != "transitioned":
            await self.credentials.discard(event_id)
            bound.info("authorization refused by the connection", outcome=receipt.outcome)
            raise CallbackRefused(
                409,
                receipt.reason or f"the connection did not accept it ({receipt.outcome})",
                outcome=receipt.outcome,
            )
        await self.credentials.promote(event_id)
        bound.info("shop authorized", to_state=receipt.to_state)
        return receipt
