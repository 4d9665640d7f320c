"""The scheduled TikTok pull: the backstop for lost webhooks (PLAT-3, PLAT-8).

Two sources per shop, each with a durable cursor (the store's ``cursors``
table, so a restart resumes where the last pass ended):

- orders, by Search Orders (update time since the cursor, minus an overlap
  for clock skew), published as ``order.status_changed``;
- product statuses, by Search Products (update time likewise), published as
  the event the matching webhook would have produced.

A pulled change carries the same event id as the webhook for that change
(`adapters.tiktok_shop.webhooks.order_status_event_id` and
`product_status_event_id`), so whichever arrives second is a duplicate. The
cursor moves only after the pass's events are durably recorded.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol

from adapters.ids import DeadLetter, InvalidId, refuse_pulled, tiktok_id
from adapters.pulls import FIRST_LOOKBACK, OVERLAP, CursorStore, Publish, isolated, publish_new
from adapters.tiktok_shop.client import TikTokClient
from adapters.tiktok_shop.webhooks import (
    order_status_event_id,
    product_status_event_id,
    product_status_events,
)
from engine.logs import get_logger

log = get_logger("channelsync.tiktok.pull")

PAGE_SIZE = 100  # the most Search Orders and Search Products hand out per page
ORDER_SEARCH = "/order/202309/orders/search"
PRODUCT_SEARCH = "/product/202309/products/search"


class ListingDirectory(Protocol):
    async def listing_key(self, tiktok_product_id: str) -> str | None: ...


def order_event(order: dict[str, Any], tiktok_shop_id: str) -> dict[str, Any]:
    """An order as Search Orders returns it, as the event its webhook 1 would be.
    `InvalidId` for an order id that is not TikTok's (SEC-5)."""
    order_id, status = tiktok_id(order.get("id"), "order id"), order["status"]
    return {
        "event_id": order_status_event_id(order_id, status, order["update_time"]),
        "type": "order.status_changed",
        "source": "tiktok-pull",
        "entity": f"order:{order_id}",
        "payload": {
            "order_id": order_id,
            "shop_id": tiktok_shop_id,
            "order_status": status,
            "update_time": order["update_time"],
            "is_on_hold_order": bool(order.get("is_on_hold_order", False)),
        },
    }


class TikTokPuller:
    def __init__(
        self,
        client: TikTokClient,
        publish_many: Publish,
        shops: Callable[[], Awaitable[list[str]]],
        cursors: CursorStore,
        directory: ListingDirectory,
        *,
        overlap: int = OVERLAP,
        dead_letter: DeadLetter | None = None,
    ) -> None:
        self.client = client
        self.dead_letter = dead_letter
        self.publish_many = publish_many
        self.shops = shops
        self.cursors = cursors
        self.directory = directory
        self.overlap = overlap

    async def pull_once(self) -> int:
        """One pass over every connected shop; how many new (not duplicate) events it recorded."""
        published = 0
        for shop in await self.shops():
            credentials = await self.client.credentials.get(shop)
            if credentials is None:
                continue
            published += await isolated(
                shop, "orders", self.pull_orders(shop, credentials.tiktok_shop_id)
            )
            published += await isolated(shop, "product statuses", self.pull_product_statuses(shop))
        return published

    # ------------------------------------------------------------------ orders

    async def pull_orders(self, shop: str, tiktok_shop_id: str) -> int:
        name = f"tiktok:orders:{shop}"
        since, now = await self._window(name)
        events = []
        # No upper bound: an update stamped later than this clock reads (skew)
        # is taken now and, being inside the next pass's overlap, again then as
        # a duplicate; the cursor still says only "everything up to now".
        filters = {"update_time_ge": since}
        async for order in self._search(shop, ORDER_SEARCH, filters, "orders", sort=True):
            try:
                events.append(order_event(order, tiktok_shop_id))
            except InvalidId as error:
                await refuse_pulled(self.dead_letter, order, "tiktok-pull", error)
        return await self._commit(name, shop, "orders", events, now)

    # ------------------------------------------------------------------ products

    async def pull_product_statuses(self, shop: str) -> int:
        name = f"tiktok:products:{shop}"
        since, now = await self._window(name)
        events = []
        filters = {"update_time_ge": since}
        async for product in self._search(shop, PRODUCT_SEARCH, filters, "products"):
            try:
                product_id = tiktok_id(product.get("id"), "product id")
            except InvalidId as error:
                await refuse_pulled(self.dead_letter, product, "tiktok-pull", error)
                continue
            listing = await self.directory.listing_key(product_id)
            if listing is None:
                continue  # not a product this channel listed
            event_id = product_status_event_id(
                product_id, product["status"], product["update_time"]
            )
            for event in product_status_events(listing, product["status"], product["update_time"]):
                events.append({**event, "event_id": event_id, "source": "tiktok-pull"})
        return await self._commit(name, shop, "product statuses", events, now)

    # ------------------------------------------------------------------ plumbing

    async def _window(self, name: str) -> tuple[int, int]:
        """[since, now]: from the cursor less the overlap (or a day back, the first time)."""
        now = int(self.client.clock.now())
        saved = await self.cursors.cursor(name)
        since = int(saved) - self.overlap if saved is not None else now - FIRST_LOOKBACK
        return max(0, since), now

    async def _search(
        self, shop: str, path: str, filters: dict[str, int], key: str, *, sort: bool = False
    ) -> AsyncIterator[dict[str, Any]]:
        """Every item of a TikTok search, page by page: paging in the query, filters in the body."""
        token = ""
        while True:
            query: dict[str, Any] = {"page_size": PAGE_SIZE}
            if sort:
                query |= {"sort_field": "update_time", "sort_order": "ASC"}
            if token:
                query["page_token"] = token
            data = await self.client.call(shop, "POST", path, query=query, body=filters)
            items = data.get(key) or []
            for item in items:
                yield item
            token = data.get("next_page_token") or ""
            if not token or not items:
                return

    async def _commit(
        self, name: str, shop: str, what: str, events: list[dict[str, Any]], now: int
    ) -> int:
        fresh = await publish_new(self.publish_many, events)
        await self.cursors.save_cursor(name, str(now), float(now))
        if events:
            log.info(
                "tiktok pulled", entity=shop, source=what, found=len(events), new=fresh, cursor=now
            )
        return fresh
