"""Which of the merchant's entities a platform id belongs to, from the read model."""

from __future__ import annotations

from engine.store.read_models import ReadModels


class StoreDirectory:
    def __init__(self, store: ReadModels) -> None:
        self.store = store

    async def shop_key(self, tiktok_shop_id: str) -> str | None:
        found = await self.store.find_entity(
            "shop_connection", where={"tiktok_shop.shop_id": tiktok_shop_id}
        )
        return found.key if found else None

    async def listing_key(self, tiktok_product_id: str) -> str | None:
        found = await self.store.find_entity(
            "product_listing", where={"tiktok_product_id": tiktok_product_id}
        )
        return found.key if found else None

    async def exists(self, key: str) -> bool:
        """Does the channel have this entity (any chart, any state)?"""
        return await self.store.entity_exists(key)
