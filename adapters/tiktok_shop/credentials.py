"""Where a shop's TikTok tokens live: a table of the adapter's own, beside the engine's.

Tokens never enter the event log or a log line; only their expiry times do.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.store.sqlite import SQLiteStore

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tiktok_credentials (
    shop                    TEXT PRIMARY KEY,
    tiktok_shop_id          TEXT NOT NULL,
    shop_cipher             TEXT NOT NULL,
    access_token            TEXT NOT NULL,
    access_token_expire_in  INTEGER NOT NULL,
    refresh_token           TEXT NOT NULL,
    refresh_token_expire_in INTEGER NOT NULL
)
"""


@dataclass(frozen=True)
class Credentials:
    shop: str
    tiktok_shop_id: str
    shop_cipher: str
    access_token: str
    access_token_expire_in: int
    refresh_token: str
    refresh_token_expire_in: int

    def __repr__(self) -> str:  # never print a token by accident
        return f"Credentials(shop={self.shop!r}, tiktok_shop_id={self.tiktok_shop_id!r})"


class CredentialStore:
    def __init__(self, store: SQLiteStore) -> None:
        self.store = store
        self._ready = False

    async def _ensure(self) -> None:
        if not self._ready:
            await self.store.execute_write(_SCHEMA)
            self._ready = True

    async def save(self, credentials: Credentials) -> None:
        await self._ensure()
        await self.store.execute_write(
            "INSERT OR REPLACE INTO tiktok_credentials VALUES (?,?,?,?,?,?,?)",
            (
                credentials.shop,
                credentials.tiktok_shop_id,
                credentials.shop_cipher,
                credentials.access_token,
                credentials.access_token_expire_in,
                credentials.refresh_token,
                credentials.refresh_token_expire_in,
            ),
        )

    async def get(self, shop: str) -> Credentials | None:
        await self._ensure()
        rows = await self.store.fetchall(
            "SELECT shop, tiktok_shop_id, shop_cipher, access_token, access_token_expire_in,"
            " refresh_token, refresh_token_expire_in FROM tiktok_credentials WHERE shop = ?",
            (shop,),
        )
        return Credentials(*rows[0]) if rows else None

    async def by_tiktok_shop(self, tiktok_shop_id: str) -> Credentials | None:
        await self._ensure()
        rows = await self.store.fetchall(
            "SELECT shop, tiktok_shop_id, shop_cipher, access_token, access_token_expire_in,"
            " refresh_token, refresh_token_expire_in FROM tiktok_credentials"
            " WHERE tiktok_shop_id = ?",
            (tiktok_shop_id,),
        )
        return Credentials(*rows[0]) if rows else None
