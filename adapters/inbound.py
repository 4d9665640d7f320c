"""The two platforms' inbound adapters (see `adapters.base.InboundAdapter`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from adapters.base import InboundAdapter, InboundRejected, rejection_reason
from adapters.shoplazza import verify_webhook as verify_shoplazza
from adapters.shoplazza.webhooks import translate as translate_shoplazza
from adapters.tiktok_shop import verify_webhook as verify_tiktok
from adapters.tiktok_shop.webhooks import EntityDirectory
from adapters.tiktok_shop.webhooks import translate as translate_tiktok
from engine.logs import get_logger

if TYPE_CHECKING:
    from adapters.directory import StoreDirectory
    from channelsync.settings import ChannelSettings

log = get_logger("channelsync.inbound")


def platform_inbound(
    config: ChannelSettings, directory: StoreDirectory
) -> dict[str, InboundAdapter]:
    """The two platforms' webhook routes, as every receiver (serve's, the
    receiver role's) verifies and translates them."""
    return {
        "tiktok": TikTokInbound(config.tiktok_app_key, config.tiktok_app_secret, directory),
        "shoplazza": ShoplazzaInbound(config.shoplazza_client_secret, directory),
    }


class TikTokInbound:
    name = "tiktok"

    def __init__(self, app_key: str, app_secret: str, directory: EntityDirectory) -> None:
        self.app_key = app_key
        self.app_secret = app_secret
        self.directory = directory

    def verify(self, body: bytes, headers: Mapping[str, str]) -> bool:
        return verify_tiktok(self.app_key, self.app_secret, body, headers.get("authorization"))

    async def translate(self, body: bytes, headers: Mapping[str, str]) -> list[dict[str, Any]]:
        try:
            return await translate_tiktok(body, self.directory)
        except Exception as error:
            raise InboundRejected(rejection_reason(error)) from None


class Entities(Protocol):
    async def exists(self, key: str) -> bool: ...


class ShoplazzaInbound:
    """Shoplazza deliveries. The shop-domain header is not signed (PLAT-9): an
    event for an entity the channel does not have (a product it does not
    sync, a store it was never set up for) is dropped, so a body resent under
    another store's domain reaches nothing; the delivery is acknowledged."""

    name = "shoplazza"

    def __init__(self, client_secret: str, entities: Entities) -> None:
        self.client_secret = client_secret
        self.entities = entities

    def verify(self, body: bytes, headers: Mapping[str, str]) -> bool:
        return verify_shoplazza(self.client_secret, body, headers.get("x-shoplazza-hmac-sha256"))

    async def translate(self, body: bytes, headers: Mapping[str, str]) -> list[dict[str, Any]]:
        topic = headers.get("x-shoplazza-topic", "")
        try:
            events = translate_shoplazza(topic, headers.get("x-shoplazza-shop-domain", ""), body)
        except Exception as error:
            raise InboundRejected(rejection_reason(error)) from None
        known = [e for e in events if await self._known(e)]
        if len(known) < len(events):
            log.info(
                "shoplazza webhook not for this channel",
                topic=topic[:64],
                dropped=[e["entity"] for e in events if e not in known],
            )
        return known

    async def _known(self, event: dict[str, Any]) -> bool:
        """The event's entity exists, and so does the listing a deletion report is about."""
        listing = event["payload"].get("listing")
        return await self.entities.exists(event["entity"]) and (
            listing is None or await self.entities.exists(listing)
        )
