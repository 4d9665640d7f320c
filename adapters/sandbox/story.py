"""The merchant story `channelsync demo` plays, over real HTTP on loopback.

Both sandboxes, the receiver and the engine run on one event loop and share a
`FakeClock`, so TikTok's hour of ON_HOLD and its review time pass at once.
The same story, with faults switched on, is the integration test.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from adapters.sandbox.images import SandboxCdn
from adapters.sandbox.shoplazza import ShoplazzaSandbox
from adapters.sandbox.tiktok import TikTokSandbox
from adapters.sandbox.webhooks import Faults
from adapters.service import ChannelService, HttpServer
from channelsync.bootstrap import open_service
from channelsync.settings import ChannelSettings
from engine.clock import Clock, FakeClock
from statecharts.merchant import set_product_attributes
from statecharts.views import order_list, product_sync_list

STORE = "demo-store"
SHOP = f"shop:{STORE}"
APP_KEY, APP_SECRET = "sandbox-app-key", "sandbox-app-secret"
CLIENT_SECRET, SHOPLAZZA_TOKEN = "sandbox-client-secret", "sandbox-access-token"
USPS, UPS = "7117858858072016686", "7117859084333745966"
HATS_AND_CAPS = "601741"  # a leaf of TikTok's US category tree
PACKAGE = {"length": 20, "width": 15, "height": 5, "unit": "CENTIMETER"}

Say = Callable[[str], None]


def sandbox_config(
    db: Path | str, tiktok_url: str, shoplazza_url: str, shoplazza_rate: float
) -> ChannelSettings:
    """The channel's settings against the two sandboxes, with the story's
    credentials; the scheduled pulls are left to the caller (``settle``)."""
    return ChannelSettings(
        db=db,
        tiktok_app_key=APP_KEY,
        tiktok_app_secret=APP_SECRET,
        shoplazza_client_secret=CLIENT_SECRET,
        shoplazza_access_token=SHOPLAZZA_TOKEN,
        tiktok_api_url=tiktok_url,
        tiktok_auth_url=tiktok_url,
        shoplazza_api_url=shoplazza_url,
        pull_interval=0,
        shoplazza_rate=shoplazza_rate,
    )


@dataclass
class Sandboxes:
    """Everything running for one story, and how to stop it."""

    clock: Clock
    tiktok: TikTokSandbox
    shoplazza: ShoplazzaSandbox
    service: ChannelService
    servers: list[HttpServer] = field(default_factory=list)
    admin: httpx.AsyncClient = field(default_factory=lambda: httpx.AsyncClient(timeout=10))
    pull: bool = True

    @classmethod
    async def start(
        cls,
        db: Path | str,
        *,
        faults: Faults | None = None,
        seed: int = 7,
        shoplazza_rate: float = 50.0,
        clock: Clock | None = None,
    ) -> Sandboxes:
        import time

        clock = clock or FakeClock(start=float(int(time.time())))
        faults = faults or Faults()
        tiktok = TikTokSandbox(APP_KEY, APP_SECRET, clock, faults=faults, seed=seed)
        shoplazza_faults = Faults(
            faults.drop,
            faults.duplicate,
            faults.reorder,
            faults.api_failure,
            rate_limit_per_second=shoplazza_rate,
        )
        shoplazza = ShoplazzaSandbox(
            STORE, CLIENT_SECRET, SHOPLAZZA_TOKEN, clock, faults=shoplazza_faults, seed=seed + 1
        )
        tiktok_http = await HttpServer(tiktok.app, "127.0.0.1", 0).start()
        shoplazza_http = await HttpServer(shoplazza.app, "127.0.0.1", 0).start()
        config = sandbox_config(db, tiktok_http.url, shoplazza_http.url, shoplazza_rate)
        # The story is the built-in channel's: installed plugins stay out of it.
        # Product images come from Shoplazza's CDN; here, its stand-in.
        service = await open_service(
            config, clock=clock, run_loops=False, plugins=[], images=SandboxCdn().source()
        )
        receiver = await service.serve()
        tiktok.webhooks.url = f"{receiver.url}/webhooks/tiktok"
        shoplazza.webhooks.url = f"{receiver.url}/webhooks/shoplazza"
        return cls(clock, tiktok, shoplazza, service, [tiktok_http, shoplazza_http])

    async def stop(self) -> None:
        await self.service.stop()
        for server in self.servers:
            await server.stop()
        await self.admin.aclose()
        await self.tiktok.webhooks.aclose()
        await self.shoplazza.webhooks.aclose()

    async def settle(self, rounds: int = 200) -> None:
        """Deliver webhooks, fire timers, carry out commands, until all is quiet."""
        engine = self.service.engine
        for _ in range(rounds):
            self.tiktok.tick()
            moved = await self.tiktok.webhooks.flush() + await self.shoplazza.webhooks.flush()
            moved += await engine.fire_due_timers()
            moved += await engine.outbox.run_once()
            if not moved and self.pull:
                # The scheduled pulls, the backstop for lost webhooks (PLAT-8).
                before = await engine.store.count("events")
                await self.service.reconcile_once()
                moved += await engine.store.count("events") - before
            if not moved:
                return
        raise RuntimeError("the story did not settle")

    async def advance(self, seconds: float) -> None:
        assert isinstance(self.clock, FakeClock), "only a FakeClock can be moved"
        self.clock.advance(seconds)
        await self.settle()

    async def tiktok_product_id(self, product_id: str) -> str:
        entity = await self.service.engine.entity(f"listing:{STORE}:{product_id}")
        assert entity is not None
        return entity.data["tiktok_product_id"]

    async def shoplazza_order_id(self, order_id: str) -> str:
        entity = await self.service.engine.entity(f"order:{order_id}")
        assert entity is not None
        return entity.data["sync"]["shoplazza_order_id"]


async def walk_setup_to_authorize(service: ChannelService) -> None:
    """The merchant's clicks before authorizing (CONN-2): start setup for the
    US store, connect, choose the seller account, accept TikTok's terms."""
    await service.merchant(
        "connection.start_setup",
        SHOP,
        {"store_domain": f"{STORE}.myshoplaza.com", "store_country": "US"},
    )
    await service.merchant("connection.connect", SHOP)
    await service.merchant("connection.choose_account_type", SHOP, {"account_type": "seller"})
    await service.merchant("connection.accept_terms", SHOP, {"accepted": True})


async def connect_shop(box: Sandboxes) -> None:
    service = box.service
    await walk_setup_to_authorize(service)
    answer = await authorize(box)
    answer.raise_for_status()
    await service.merchant("logistics.set_fulfillment_model", SHOP, {"fulfillment_model": "FBS"})
    await box.settle()
    await service.merchant(
        "logistics.map_carrier",
        SHOP,
        {"tracking_company_code": "usps", "shipping_provider_id": USPS},
    )
    await service.merchant(
        "logistics.map_carrier", SHOP, {"tracking_company_code": "ups", "shipping_provider_id": UPS}
    )
    await box.settle()
    await give_package_sizes(box)


async def authorize(box: Sandboxes, shop: str = SHOP) -> httpx.Response:
    """The OAuth dance (CONN-7): the merchant clicks Authorize on the shop
    (`begin_authorization` gives TikTok's URL with a nonce), the seller
    approves on TikTok (the sandbox's authorize answers with the code and the
    state), TikTok redirects to the callback. Returns the callback's answer."""
    service = box.service
    assert service.http is not None
    url = await service.begin_authorization(shop)
    # The authorize URL names the auth host; the sandbox serves it too.
    approved = await box.admin.get(url)
    approved.raise_for_status()
    granted = approved.json()
    return await box.admin.get(
        f"{service.http.url}/oauth/tiktok/callback",
        params={"code": granted["code"], "state": granted["state"]},
    )


async def give_package_sizes(box: Sandboxes) -> None:
    """TikTok needs each product's package size and Shoplazza has no field for
    it: the merchant gives it (PROD-10), before the products are synced."""
    for product_id in box.shoplazza.products:
        await set_product_attributes(
            box.service.engine,
            f"listing:{STORE}:{product_id}",
            package_dimensions=PACKAGE,
            # PROD-7: a category the merchant chose is used; the others are
            # recommended by TikTok from the title.
            **({"category_id": HATS_AND_CAPS} if product_id == "1002" else {}),
        )


async def play(
    box: Sandboxes,
    say: Say = lambda _line: None,
    show: Callable[[str, list[dict[str, Any]]], None] | None = None,
) -> dict[str, str]:
    """The whole story. Returns the TikTok order ids it created, by role."""
    service, store = box.service, box.service.engine.store
    show = show or (lambda _title, _rows: None)

    say("Connecting the Shoplazza store to TikTok Shop (US), Fulfilled by Seller")
    await connect_shop(box)
    say(
        "The merchant has given each product its package size, which Shoplazza has no field"
        " for, and chose TikTok's 'Hats & Caps' category for the straw hat"
    )
    say("Syncing the 'summer' collection")
    await service.add_collection(SHOP, "summer")
    await box.settle()
    show(
        "Product Sync List, just after adding",
        [r.as_dict() for r in await product_sync_list(store)],
    )
    say("Two hours later, TikTok has reviewed the products")
    await box.advance(2 * 3600)
    show("Product Sync List", [r.as_dict() for r in await product_sync_list(store)])

    shirt = await box.tiktok_product_id("1001")
    hat = await box.tiktok_product_id("1002")
    say("A buyer orders the linen shirt and pays: the order goes On Hold for an hour")
    shipped = box.tiktok.create_order([{"product_id": shirt, "seller_sku": "SKU-1001"}])["id"]
    await box.settle()
    box.tiktok.order_action(shipped, "pay")
    await box.settle()
    show(
        "Orders (TikTok Shop)",
        [r.as_dict() for r in await order_list(store, channel="TikTok Shop")],
    )
    say("An hour later the hold ends; the merchant ships it from Shoplazza with USPS tracking")
    await box.advance(3600)
    box.shoplazza.fulfill(await box.shoplazza_order_id(shipped), "9400111899223197428490", "usps")
    await box.settle()

    say("Another buyer orders the straw hat, pays, then cancels on TikTok")
    cancelled = box.tiktok.create_order([{"product_id": hat, "seller_sku": "SKU-1002"}])["id"]
    await box.settle()
    box.tiktok.order_action(cancelled, "pay")
    await box.settle()
    box.tiktok.order_action(cancelled, "cancel")
    await box.settle()

    say("The first buyer gets a refund on TikTok: Shoplazza's order does not change")
    box.tiktok.order_action(shipped, "refund")
    await box.settle()
    show(
        "Orders (TikTok Shop)",
        [r.as_dict() for r in await order_list(store, channel="TikTok Shop")],
    )

    say("The merchant unpublishes the linen shirt in Shoplazza: it is deactivated on TikTok")
    box.shoplazza.product_action("1001", "update", published=False)
    await box.settle()
    show("Product Sync List", [r.as_dict() for r in await product_sync_list(store)])
    say("A day later it is published again: TikTok sells it again (PROD-11)")
    await box.advance(24 * 3600)
    box.shoplazza.product_action("1001", "update", published=True)
    await box.settle()
    await box.advance(2 * 3600)
    show("Product Sync List", [r.as_dict() for r in await product_sync_list(store)])
    return {"shipped": shipped, "cancelled": cancelled}
