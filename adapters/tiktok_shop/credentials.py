"""Where a shop's TikTok tokens live: records of the adapter's own in the store.

Tokens never enter the event log or a log line; only their expiry times do.
Tokens traded from an OAuth code are *staged* under the id of the
`connection.authorized` event that reports them, and become the shop's tokens
only once that event transitioned the connection (CONN-7): a refused or forged
authorization never replaces the tokens a shop has. They are kept as the
store's records (`engine.store.read_models`), under this adapter's namespaces.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from engine.store.read_models import ReadModels, Record

# The store's record namespaces this adapter keeps tokens under.
CREDENTIALS = "tiktok_shop.credentials"
STAGED = "tiktok_shop.staged_credentials"


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

    @classmethod
    def of(cls, record: Record) -> Credentials:
        value: dict[str, Any] = record.value
        return cls(**{name: value[name] for name in cls.__dataclass_fields__})


class CredentialStore:
    def __init__(self, store: ReadModels) -> None:
        self.store = store

    async def save(self, credentials: Credentials) -> None:
        await self.store.put_record(CREDENTIALS, credentials.shop, asdict(credentials))

    async def get(self, shop: str) -> Credentials | None:
        record = await self.store.get_record(CREDENTIALS, shop)
        return Credentials.of(record) if record else None

    async def by_tiktok_shop(self, tiktok_shop_id: str) -> Credentials | None:
        found = await self.store.find_records(CREDENTIALS, where={"tiktok_shop_id": tiktok_shop_id})
        return Credentials.of(found[0]) if found else None

    # ------------------------------------------------------------ staged (CONN-7)

    async def stage(self, event_id: str, credentials: Credentials, at: float) -> None:
        """Keep tokens aside, under the event that will report the authorization."""
        await self.store.put_record(STAGED, event_id, asdict(credentials), at=at)

    async def promote(self, event_id: str) -> bool:
        """The staged tokens become the shop's (in one transaction); False if none."""
        staged = await self.store.get_record(STAGED, event_id)
        if staged is None:
            return False
        return await self.store.move_record(STAGED, event_id, CREDENTIALS, staged.value["shop"])

    async def discard(self, event_id: str) -> None:
        await self.store.delete_record(STAGED, event_id)

    async def settle_staged(
        self, *, now: float | None = None, keep_unrecorded: float = 0.0
    ) -> tuple[int, int]:
        """Promote staged tokens whose event transitioned the connection,
        discard the others (refused, or never recorded). Returns (promoted,
        discarded). In one process (serve) this runs when the service opens,
        after a crash, while no authorization is in flight. In a cluster a
        receiver's authorization is recorded only once a worker applies it from
        the bus: tokens staged less than ``keep_unrecorded`` seconds before
        ``now`` whose event is not recorded yet are left for a later pass."""
        found = await self.store.find_records(STAGED)
        if now is not None and keep_unrecorded > 0:
            since = now - keep_unrecorded
            fresh = {r.key for r in found if r.stored_at is not None and r.stored_at >= since}
        else:
            fresh = set()
        staged = [record.key for record in found]
        outcomes = await self.store.event_outcomes(staged)
        # Never recorded first, then in the order the log holds them, so the
        # latest authorization's tokens are the ones kept.
        ordered = [key for key in staged if key not in outcomes and key not in fresh]
        promoted = discarded = 0
        for event_id in ordered + list(outcomes):
            if outcomes.get(event_id) == "transitioned" and await self.promote(event_id):
                promoted += 1
            else:
                await self.discard(event_id)
                discarded += 1
        return promoted, discarded
