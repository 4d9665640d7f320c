"""The merchant's views: the Product Sync List and the order list.

Read models over the engine's entities table, which the engine keeps current
with every committed transition; nothing here scans the event log.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from engine.store.sqlite import SQLiteStore, loads

LISTING_STATUS = {
    "not_synced": "Not synced",
    "pending_sync": "Pending Sync",
    "in_review": "In Review",
    "approved": "Approved",
    "rejected": "Rejected",
    "deactivated": "Deactivated",
    "seller_deactivated": "Deactivated on TikTok",
    "platform_deactivated": "Deactivated by TikTok",
    "frozen": "Frozen",
    "deleted_on_tiktok": "Deleted on TikTok",
}
# States whose failure reasons say why the product is not selling.
REASONED_STATES = (
    "rejected",
    "seller_deactivated",
    "platform_deactivated",
    "frozen",
    "deleted_on_tiktok",
)


@dataclass(frozen=True)
class ProductRow:
    key: str
    product_id: str
    title: str
    status: str
    status_label: str
    failure_reasons: list[dict[str, Any]]
    last_sync_at: float | None
    tiktok_product_id: str | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class OrderRow:
    key: str
    order_id: str
    sales_channel: str
    status: str
    sync_status: str
    sync_reason: str | None
    shoplazza_order_id: str | None
    shoplazza_created_at: Any
    tiktok_create_time: int | None
    fulfillment_status: str | None
    fulfillment_reason: str | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


async def product_sync_list(store: SQLiteStore, status: str | None = None) -> list[ProductRow]:
    sql = "SELECT key, state, data FROM entities WHERE chart = 'product_listing'"
    params: list[Any] = []
    if status is not None:
        sql += " AND state = ?"
        params.append(status)
    rows = []
    for key, state, raw in await store.fetchall(sql + " ORDER BY key", params):
        data = loads(raw)
        # A held edit's failure is the reason a product TikTok still has shows (PROD-12).
        reasons = data.get("edit_failure") or (
            data.get("failure_reasons", []) if state in REASONED_STATES else []
        )
        rows.append(
            ProductRow(
                key,
                data.get("product", {}).get("id", key.rsplit(":", 1)[-1]),
                data.get("title", ""),
                state,
                LISTING_STATUS.get(state, state),
                reasons,
                data.get("last_sync_at"),
                data.get("tiktok_product_id"),
            )
        )
    return rows


async def order_list(
    store: SQLiteStore,
    *,
    channel: str | None = None,
    status: str | None = None,
    sync_status: str | None = None,
) -> list[OrderRow]:
    sql = "SELECT key, state, data FROM entities WHERE chart = 'order'"
    params: list[Any] = []
    if status is not None:
        sql += " AND state = ?"
        params.append(status)
    if channel is not None:
        sql += " AND json_extract(data, '$.channel') = ?"
        params.append(channel)
    if sync_status is not None:
        sql += " AND json_extract(data, '$.sync.status') = ?"
        params.append(sync_status)
    rows = []
    for key, state, raw in await store.fetchall(sql + " ORDER BY key", params):
        data = loads(raw)
        sync = data.get("sync", {})
        fulfillment = data.get("fulfillment", {})
        rows.append(
            OrderRow(
                key,
                data.get("order_id", key.split(":", 1)[1]),
                data.get("channel", ""),
                state,
                sync.get("status", "not_synced"),
                sync.get("reason"),
                sync.get("shoplazza_order_id"),
                data.get("shoplazza_created_at"),
                data.get("detail", {}).get("tiktok_create_time"),
                fulfillment.get("status"),
                fulfillment.get("reason"),
            )
        )
    return rows
