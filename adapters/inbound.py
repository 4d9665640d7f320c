"""The two platforms' inbound adapters (see `adapters.base.InboundAdapter`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adapters.base import InboundRejected, rejection_reason
from adapters.shoplazza import verify_webhook as verify_shoplazza
from adapters.shoplazza.webhooks import translate as translate_shoplazza
from adapters.tiktok_shop import verify_webhook as verify_tiktok
from adapters.tiktok_shop.webhooks import EntityDirectory
from adapters.tiktok_shop.webhooks import translate as translate_tiktok


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


class ShoplazzaInbound:
    name = "shoplazza"

    def __init__(self, client_secret: str) -> None:
        self.client_secret = client_secret

    def verify(self, body: bytes, headers: Mapping[str, str]) -> bool:
        return verify_shoplazza(self.client_secret, body, headers.get("x-shoplazza-hmac-sha256"))

    async def translate(self, body: bytes, headers: Mapping[str, str]) -> list[dict[str, Any]]:
        try:
            return translate_shoplazza(
                headers.get("x-shoplazza-topic", ""),
                headers.get("x-shoplazza-shop-domain", ""),
                body,
            )
        except Exception as error:
            raise InboundRejected(rejection_reason(error)) from None
