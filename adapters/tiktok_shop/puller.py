"""The scheduled order pull: the backstop for lost webhooks (PLAT-3).

Search Orders by update time since the last pull (with an overlap), page by
page, and publish each order's status as an ordinary event. A status already
known is refused as stale by the order chart, so pulling again is harmless.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from adapters.tiktok_shop.client import TikTokClient
from engine.logs import get_logger

log = get_logger("channelsync.tiktok.pull")
OVERLAP = 300


class OrderPuller:
    def __init__(
        self,
        client: TikTokClient,
        publish: Callable[[dict[str, Any]], Awaitable[Any]],
        shops: Callable[[], Awaitable[list[str]]],
    ) -> None:
        self.client = client
        self.publish = publish
        self.shops = shops
        self.since: dict[str, int] = {}

    async def pull_once(self) -> int:
        published = 0
        for shop in await self.shops():
            credentials = await self.client.credentials.get(shop)
            if credentials is None:
                continue
            now = int(self.client.clock.now())
            since = max(0, self.since.get(shop, now - 86400) - OVERLAP)
            token = ""
            while True:
                query = {"update_time_ge": since, "update_time_lt": now + 1, "page_size": 100}
                if token:
                    query["page_token"] = token
                data = await self.client.call(
                    shop, "POST", "/order/202309/orders/search", query=query, body={}
                )
                for order in data.get("orders", []):
                    await self.publish(
                        {
                            "event_id": f"tiktok:pull:{order['id']}:{order['update_time']}",
                            "type": "order.status_changed",
                            "source": "tiktok-pull",
                            "entity": f"order:{order['id']}",
                            "payload": {
                                "order_id": str(order["id"]),
                                "shop_id": credentials.tiktok_shop_id,
                                "order_status": order["status"],
                                "update_time": order["update_time"],
                                "is_on_hold_order": False,
                            },
                        }
                    )
                    published += 1
                token = data.get("next_page_token") or ""
                if not token:
                    break
            self.since[shop] = now
        if published:
            log.info("orders pulled", count=published)
        return published
