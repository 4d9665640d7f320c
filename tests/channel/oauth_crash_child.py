"""Child process for the CONN-7 crash test: authorize a shop, and die (no
clean-up of any kind) right after the authorization is committed, before its
staged tokens are promoted.

Usage: python -m tests.channel.oauth_crash_child DB TIKTOK_URL SHOPLAZZA_URL NOW SHOP
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import httpx

from adapters.sandbox.story import sandbox_config
from adapters.tiktok_shop.credentials import CredentialStore
from channelsync.bootstrap import open_service
from engine.clock import FakeClock
from engine.logs import configure_logging

DIED = 17  # the exit status that says the child died where it was meant to


async def _die(_self: CredentialStore, _event_id: str) -> bool:
    sys.stdout.flush()
    os._exit(DIED)


async def main(db: str, tiktok_url: str, shoplazza_url: str, now: float, shop: str) -> None:
    configure_logging("ERROR", json=True)
    config = sandbox_config(Path(db), tiktok_url, shoplazza_url, 50.0)
    service = await open_service(config, clock=FakeClock(start=now), run_loops=False, plugins=[])
    setup = (
        ("connection.start_setup", {"store_domain": "crash.myshoplaza.com", "store_country": "US"}),
        ("connection.connect", {}),
        ("connection.choose_account_type", {"account_type": "seller"}),
        ("connection.accept_terms", {"accepted": True}),
    )
    for event_type, payload in setup:
        await service.merchant(event_type, shop, payload)
    async with httpx.AsyncClient() as seller:
        granted = (await seller.get(await service.begin_authorization(shop))).json()
    CredentialStore.promote = _die  # type: ignore[method-assign]
    await service.complete_oauth(granted["state"], granted["code"])
    print("the authorization completed: the child was meant to die first", flush=True)


if __name__ == "__main__":
    db, tiktok_url, shoplazza_url, now, shop = sys.argv[1:6]
    asyncio.run(main(db, tiktok_url, shoplazza_url, float(now), shop))
