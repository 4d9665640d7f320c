"""Which of the merchant's entities a platform id belongs to, from the read model."""

from __future__ import annotations

from engine.store.sqlite import SQLiteStore


class StoreDirectory:
    def __init__(self, store: SQLiteStore) -> None:
        self.store = store

    async def shop_key(self, tiktok_shop_id: str) -> str | None:
        rows = await self.store.fetchall(
            "SELECT key FROM entities WHERE chart = 'shop_connection'"
            " AND json_extract(data, '$.tiktok_shop.shop_id') = ?",
            (tiktok_shop_id,),
        )
        return rows[0][0] if rows else None

    async def listing_key(self, tiktok_product_id: str) -> str | None:
        rows = await self.store.fetchall(
            "SELECT key FROM entities WHERE chart = 'product_listing'"
            " AND json_extract(data, '$.tiktok_product_id') = ?",
            (tiktok_product_id,),
        )
        return rows[0][0] if rows else None

    async def exists(self, key: str) -> bool:
        """Does the channel have this entity (any chart, any state)?"""
        rows = await self.store.fetchall("SELECT 1 FROM entities WHERE key = ?", (key,))
        return bool(rows)
