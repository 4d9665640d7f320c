"""The merchant's connection buttons as a library API: disconnect (CONN-6).

Charts decide; this module only turns the button into the chart's event, so
the CLI, an HTTP handler or a test all go through the same step and get the
same receipt (an "ignored" receipt carries the chart's reason).
"""

from __future__ import annotations

import uuid

from engine import Engine
from engine.bus import Receipt

CHART = "shop_connection"


class UnknownShop(LookupError):
    """No shop connection has this key."""


async def disconnect(engine: Engine, shop_key: str, *, reason: str = "") -> Receipt:
    """Disconnect the shop: back to Not connected, setup (terms included) must
    run again to reconnect, and outbound work is held until then (CONN-6)."""
    entity = await engine.entity(shop_key)
    if entity is None or entity.chart != CHART:
        raise UnknownShop(f"no shop {shop_key}")
    payload = {"reason": reason} if reason else {}
    return await engine.publish(
        engine.make_event(
            "connection.disconnected",
            shop_key,
            payload,
            # Each press is its own event; a repeat is refused by the chart
            # ("the shop is not connected"), never silently merged.
            event_id=f"merchant:disconnect:{shop_key}:{uuid.uuid4().hex}",
            source="merchant",
        )
    )
