"""Facts about TikTok's and Shoplazza's orders that every version of the order
chart's rules reads (statecharts/order.py, statecharts/order_v1.py): the
platforms' statuses and their order, not rules of one chart version."""

from __future__ import annotations

SALES_CHANNEL = "TikTok Shop"
# TikTok masks the recipient address while UNPAID or ON_HOLD (and CANCELLED) (ORD-5).
ADDRESS_VISIBLE = frozenset(
    {
        "awaiting_shipment",
        "partially_shipping",
        "awaiting_collection",
        "in_transit",
        "delivered",
        "completed",
    }
)
ON_HOLD_STATES = frozenset({"unpaid", "on_hold"})
# How far along TikTok's lifecycle each state is (ORD-9: at an equal update_time
# only a move to a higher rank applies). Partially Shipping comes before
# Awaiting Collection: TikTok may go either way between them, but only with a
# newer update_time. Completed and Cancelled both end the lifecycle.
LIFECYCLE_RANK = {
    "unpaid": 0,
    "on_hold": 1,
    "awaiting_shipment": 2,
    "partially_shipping": 3,
    "awaiting_collection": 4,
    "in_transit": 5,
    "delivered": 6,
    "completed": 7,
    "cancelled": 7,
}
# How far along Shoplazza's own statuses go: the copy of an order in Shoplazza
# only moves forward (ORD-6), whoever moved it last (TikTok's sync or the
# merchant in Shoplazza).
FINANCIAL_RANK = {
    "waiting": 0,
    "failed": 0,
    "paying": 1,
    "authorized": 2,
    "partially_paid": 2,
    "paid": 3,
    "refunding": 4,
    "refund_failed": 4,
    "partially_refunded": 5,
    "refunded": 6,
    "cancelled": 7,
}
FULFILLMENT_RANK = {
    "initialled": 0,
    "waiting": 0,
    "partially_shipped": 1,
    "shipped": 2,
    "partially_finished": 3,
    "finished": 4,
    "returning": 5,
    "partially_returned": 5,
    "returned": 6,
    "cancelled": 7,
}
DEFAULT_SYNC_RETRY = "15m"
