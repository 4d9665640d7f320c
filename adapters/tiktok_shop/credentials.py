"""Where a shop's TikTok tokens live: tables of the adapter's own, beside the engine's.

Tokens never enter the event log or a log line; only their expiry times do.
Tokens traded from an OAuth code are *staged* under the id of the
`connection.authorized` event that reports them, and become the shop's tokens
only once that event transitioned the connection (CONN-7): a refused or forged
authorization never replaces the tokens a shop has. The tables are created by
the migrations (`engine.store.schema`).
"""

from __future__ import annotations

import sqlite3
from dataclasses import astuple, dataclass

from engine.store.sqlite import SQLiteStore

_COLUMNS = (
    "shop, tiktok_shop_id, shop_cipher, access_token, access_token_expire_in,"
    " refresh_token, refresh_token_expire_in"
)


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

    async def save(self, credentials: Credentials) -> None:
        await self.store.execute_write(
            f"INSERT OR REPLACE INTO tiktok_credentials ({_COLUMNS}) VALUES (?,?,?,?,?,?,?)",
            astuple(credentials),
        )

    async def get(self, shop: str) -> Credentials | None:
        rows = await self.store.fetchall(
            f"SELECT {_COLUMNS} FROM tiktok_credentials WHERE shop = ?", (shop,)
        )
        return Credentials(*rows[0]) if rows else None

    async def by_tiktok_shop(self, tiktok_shop_id: str) -> Credentials | None:
        rows = await self.store.fetchall(
            f"SELECT {_COLUMNS} FROM tiktok_credentials WHERE tiktok_shop_id = ?",
            (tiktok_shop_id,),
        )
        return Credentials(*rows[0]) if rows else None

    # ------------------------------------------------------------ staged (CONN-7)

    async def stage(self, event_id: str, credentials: Credentials, at: float) -> None:
        """Keep tokens aside, under the event that will report the authorization."""
        await self.store.execute_write(
            f"INSERT OR REPLACE INTO tiktok_credentials_staged (event_id, {_COLUMNS}, staged_at)"
            " VALUES (?,?,?,?,?,?,?,?,?)",
            (event_id, *astuple(credentials), at),
        )

    async def promote(self, event_id: str) -> bool:
        """The staged tokens become the shop's (in one transaction); False if none."""
        return await self.store.run_write(_promote, event_id)

    async def discard(self, event_id: str) -> None:
        await self.store.execute_write(
            "DELETE FROM tiktok_credentials_staged WHERE event_id = ?", (event_id,)
        )

    async def settle_staged(self) -> tuple[int, int]:
        """After a crash: promote staged tokens whose event transitioned the
        connection, discard the others (refused, or never recorded). Run while
        no authorization is in flight (when the service opens). Returns
        (promoted, discarded)."""
        rows = await self.store.fetchall(
            "SELECT s.event_id, e.outcome FROM tiktok_credentials_staged s"
            " LEFT JOIN events e ON e.event_id = s.event_id ORDER BY e.seq"
        )
        promoted = discarded = 0
        for event_id, outcome in rows:
            if outcome == "transitioned" and await self.promote(event_id):
                promoted += 1
            else:
                await self.discard(event_id)
                discarded += 1
        return promoted, discarded


def _promote(db: sqlite3.Connection, event_id: str) -> bool:
    db.execute("BEGIN IMMEDIATE")
    try:
        moved = db.execute(
            f"INSERT OR REPLACE INTO tiktok_credentials ({_COLUMNS})"
            f" SELECT {_COLUMNS} FROM tiktok_credentials_staged WHERE event_id = ?",
            (event_id,),
        ).rowcount
        db.execute("DELETE FROM tiktok_credentials_staged WHERE event_id = ?", (event_id,))
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return moved > 0
