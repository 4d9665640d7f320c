"""The scheduled Shoplazza pull: the backstop for lost webhooks (PLAT-8).

Three sources per store, each with a durable cursor (the store's ``cursors``
table, so a restart resumes where the last pass ended):

- products changed since the cursor (Product List, ``updated_at_min``), for
  the products the channel syncs: ``listing.product_updated``, named like
  the products/update webhook of the same change;
- stock: the synced products' variants, read a slice per pass (the cursor is
  the last product id looked at), compared with what each listing holds.
  Stock can move without moving the product's ``updated_at`` and without a
  products/update, so only a look at the stock itself finds it. A synced
  product the list no longer returns, and that Shoplazza answers 404 for, was
  deleted: ``listing.product_removed``, named like products/delete;
- fulfillments of the channel's orders changed since the cursor (Order List,
  then the order's fulfillments): ``order.shoplazza_fulfilled`` or
  ``order.shoplazza_tracking_updated``, named like the orders/update webhook
  of the same fulfillment.

A cursor moves only after the events of its pass are durably recorded.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from adapters.ids import DeadLetter, InvalidId, refuse_pulled, shoplazza_id
from adapters.pulls import FIRST_LOOKBACK, OVERLAP, CursorStore, Publish, isolated, publish_new
from adapters.shoplazza.client import ShoplazzaClient, ShoplazzaError
from adapters.shoplazza.webhooks import (
    fulfillment_event,
    fulfillment_event_id,
    product_event_id,
    product_removed_event_id,
    tiktok_order_id,
)
from engine.charts.configuration import is_active
from engine.clock import Clock
from engine.logs import get_logger
from engine.step import EntityState

log = get_logger("channelsync.shoplazza.pull")

PAGE = 100  # items per page asked of the list endpoints
STOCK_BATCH = 50  # product ids per stock read
STOCK_SLICE = 500  # products whose stock one pass looks at, resumed next pass
# Shoplazza fulfillment_status values of an order with no fulfillment at all.
UNSHIPPED = ("initialled", "waiting")
SYNCED_STATES = ("pending_sync", "in_review", "approved", "rejected")
# A product edit also matters to a Deactivated listing: republishing it in
# Shoplazza is how the merchant brings it back.
FOLLOWED_STATES = (*SYNCED_STATES, "deactivated")


class Listings(Protocol):
    async def entities(
        self, *, chart: str | None = None, state: str | None = None, kind: str | None = None
    ) -> list[EntityState]: ...


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat()


def _seconds(stamp: str) -> float:
    return datetime.fromisoformat(stamp).timestamp()


class ShoplazzaReconciler:
    def __init__(
        self,
        client: ShoplazzaClient,
        publish_many: Publish,
        stores: Callable[[], Awaitable[list[str]]],
        cursors: CursorStore,
        listings: Listings,
        clock: Clock,
        *,
        overlap: int = OVERLAP,
        stock_slice: int = STOCK_SLICE,
        dead_letter: DeadLetter | None = None,
    ) -> None:
        self.client = client
        self.dead_letter = dead_letter
        self.publish_many = publish_many
        self.stores = stores
        self.cursors = cursors
        self.listings = listings
        self.clock = clock
        self.overlap = overlap
        self.stock_slice = stock_slice

    async def pull_once(self) -> int:
        """One pass over every connected store; how many new (not duplicate) events it recorded."""
        published = 0
        for store in await self.stores():
            shop = f"shop:{store}"
            published += await isolated(shop, "products", self.pull_products(store))
            published += await isolated(shop, "stock", self.pull_stock(store))
            published += await isolated(shop, "fulfillments", self.pull_fulfillments(store))
        return published

    # ------------------------------------------------------------------ products

    async def pull_products(self, store: str) -> int:
        name = f"shoplazza:products:{store}"
        since, now = await self._window(name)
        followed = await self._listings(store, FOLLOWED_STATES)
        events = []
        params = {"updated_at_min": _iso(since), "updated_at_max": _iso(now)}
        async for product in self._product_pages(params):
            product_id = str(product["id"])
            if product_id not in followed:
                continue  # a product the merchant never added to the channel
            events.append(self._product_event(store, product, product_event_id(product)))
        return await self._commit(name, store, "products", events, _iso(now), now)

    # ------------------------------------------------------------------ stock

    async def pull_stock(self, store: str) -> int:
        """Compare a slice of the synced products' stock with what their listings hold."""
        name = f"shoplazza:stock:{store}"
        synced = await self._listings(store, SYNCED_STATES)
        after = await self.cursors.cursor(name) or ""
        ids = sorted(synced)
        remaining = [i for i in ids if i > after]
        chosen = remaining[: self.stock_slice]
        wrapped = len(chosen) == len(remaining)  # the sweep reached the end: start over
        events = []
        for start in range(0, len(chosen), STOCK_BATCH):
            batch = chosen[start : start + STOCK_BATCH]
            params = {"ids": ",".join(batch), "per_page": len(batch)}
            data = await self.client.call("GET", "/products", params=params)
            listed = data.get("products") or []
            for product in listed:
                listing = synced.get(str(product["id"]))
                if listing is None or _stock(product) == _stock(listing.data.get("product")):
                    continue
                change = _digest(_stock(product))
                event_id = f"shoplazza:stock:{product['id']}:v{listing.version}:{change}"
                events.append(self._product_event(store, product, event_id))
            missing = set(batch) - {str(p["id"]) for p in listed}
            for product_id in sorted(missing):
                removal = await self._removal(store, product_id)
                if removal is not None:
                    events.append(removal)
        position = "" if wrapped else chosen[-1]
        now = self.clock.now()
        return await self._commit(name, store, "stock", events, position, now)

    async def _removal(self, store: str, product_id: str) -> dict[str, Any] | None:
        """A synced product missing from the list is removed only once Shoplazza
        itself answers 404 for it: a deletion is never inferred from an absence
        alone (PLAT-9)."""
        try:
            await self.client.call("GET", f"/products/{product_id}")
        except ShoplazzaError as error:
            if error.status != 404:
                raise
            return {
                "event_id": product_removed_event_id(product_id),
                "type": "listing.product_removed",
                "source": "shoplazza-pull",
                "entity": f"listing:{store}:{product_id}",
                "payload": {"reason": "deleted"},
            }
        return None

    # ------------------------------------------------------------------ fulfillments

    async def pull_fulfillments(self, store: str) -> int:
        name = f"shoplazza:fulfillments:{store}"
        since, now = await self._window(name)
        window = {"updated_at_min": _iso(since), "updated_at_max": _iso(now)}
        events = []
        page = 1
        while True:
            params = {**window, "limit": PAGE, "page": page}
            orders = (await self.client.call("GET", "/orders", params=params)).get("orders") or []
            for order in orders:
                events.extend(await self._fulfillment_events(order, since))
            if len(orders) < PAGE:
                break
            page += 1
        return await self._commit(name, store, "fulfillments", events, _iso(now), now)

    async def _fulfillment_events(self, order: dict[str, Any], since: float) -> list[dict]:
        try:
            tiktok_id = tiktok_order_id(order)
            if tiktok_id is None:
                return []  # not a TikTok Shop order
            # The id goes into a request path: Shoplazza's format only (SEC-5).
            order_id = shoplazza_id(order.get("id"), "order id")
        except InvalidId as error:
            await refuse_pulled(self.dead_letter, order, "shoplazza-pull", error)
            return []
        if order.get("fulfillment_status") in UNSHIPPED:
            return []  # nothing shipped yet: no fulfillment to read (saves a call)
        answer = await self.client.call("GET", f"/orders/{order_id}/fulfillments")
        fulfillments = sorted(
            answer.get("fulfillments") or [], key=lambda f: _seconds(f["created_at"])
        )
        events = []
        for index, fulfillment in enumerate(fulfillments):
            if _seconds(fulfillment["updated_at"]) < since:
                continue  # already seen by an earlier pass
            kind, payload = fulfillment_event(fulfillments, index)
            events.append(
                {
                    "event_id": fulfillment_event_id(order_id, fulfillment),
                    "type": kind,
                    "source": "shoplazza-pull",
                    "entity": f"order:{tiktok_id}",
                    "payload": payload,
                }
            )
        return events

    # ------------------------------------------------------------------ plumbing

    async def _window(self, name: str) -> tuple[float, float]:
        now = float(int(self.clock.now()))
        saved = await self.cursors.cursor(name)
        since = _seconds(saved) - self.overlap if saved else now - FIRST_LOOKBACK
        return max(0.0, since), now

    async def _listings(self, store: str, states: Sequence[str]) -> dict[str, EntityState]:
        """The store's listings in these states (or their substates: ``approved``
        holds ``approved.edit_held``), by Shoplazza product id."""
        prefix = f"listing:{store}:"
        found: dict[str, EntityState] = {}
        for listing in await self.listings.entities(chart="product_listing"):
            if listing.key.startswith(prefix) and any(is_active(listing.state, s) for s in states):
                found[listing.key[len(prefix) :]] = listing
        return found

    async def _product_pages(self, params: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        cursor = ""
        while True:
            query = {**params, "per_page": PAGE}
            if cursor:
                query["cursor"] = cursor
            data = await self.client.call("GET", "/products", params=query)
            for product in data.get("products") or []:
                yield product
            cursor = data.get("cursor") or ""
            if not cursor or not data.get("products"):
                return

    @staticmethod
    def _product_event(store: str, product: dict[str, Any], event_id: str | None) -> dict:
        return {
            "event_id": event_id or f"shoplazza:product:{product['id']}:{_digest(product)}",
            "type": "listing.product_updated",
            "source": "shoplazza-pull",
            "entity": f"listing:{store}:{product['id']}",
            "payload": {"product": product},
        }

    async def _commit(
        self,
        name: str,
        store: str,
        what: str,
        events: list[dict[str, Any]],
        position: str,
        now: float,
    ) -> int:
        fresh = await publish_new(self.publish_many, events)
        await self.cursors.save_cursor(name, position, now)
        if events:
            log.info(
                "shoplazza pulled",
                entity=f"shop:{store}",
                source=what,
                found=len(events),
                new=fresh,
            )
        return fresh


def _stock(product: dict[str, Any] | None) -> dict[str, int]:
    """Each variant's stock, by variant id."""
    variants = (product or {}).get("variants") or []
    return {str(v.get("id")): int(v.get("inventory_quantity") or 0) for v in variants}


def _digest(value: Any) -> str:
    text = repr(sorted(value.items())) if isinstance(value, dict) else repr(value)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
