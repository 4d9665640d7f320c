"""Channel services: the lookups the charts ask for, and the authorization gate.

Charts are pure: when a rule needs another entity's data (is this product
synced? which TikTok provider is this carrier mapped to? is the authorization
active?) the chart emits a ``resolve_*`` command. These handlers answer it from
the engine's read model with an event, and the chart's guards decide.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from engine.charts.configuration import is_active
from engine.logs import get_logger
from engine.outbox import CommandHeld, OutboxCommand
from engine.step import EntityState
from engine.store.read_models import ReadModels
from statecharts.connection import hold_key, is_authorized

log = get_logger("channelsync.authorization")

CONNECTION = "shop_connection"
Handler = Callable[[OutboxCommand], Awaitable[Any]]


class ChannelResolvers:
    def __init__(self, store: ReadModels) -> None:
        self.store = store

    def handlers(self) -> dict[str, Handler]:
        return {
            "resolve_order_products": self.resolve_order_products,
            "resolve_carrier": self.resolve_carrier,
            "retry_unmapped_fulfillments": self.retry_unmapped_fulfillments,
            "resume_refused_work": self.resume_refused_work,
        }

    async def connection(
        self, *, shop: str | None = None, tiktok_shop_id: str | None = None
    ) -> tuple[str, str, dict[str, Any]] | None:
        """(key, state, data) of the connection by its key or its TikTok shop id."""
        if shop:
            found = await self.store.entity(shop)
        elif tiktok_shop_id:
            found = await self.store.find_entity(
                CONNECTION, where={"tiktok_shop.shop_id": tiktok_shop_id}
            )
        else:
            connections = await self.store.find_entities(CONNECTION, limit=2)
            found = connections[0] if len(connections) == 1 else None
        return (found.key, found.state, found.data) if found else None

    async def resolve_order_products(self, command: OutboxCommand) -> list[dict[str, Any]]:
        payload = command.payload
        found = await self.connection(tiktok_shop_id=payload.get("shop_id"))
        active = found is not None and is_authorized(found[1])
        unsynced, unavailable, items = [], [], []
        order = await self.store.entity(payload["order"])
        line_items = order.data.get("detail", {}).get("line_items", []) if order else []
        for product_id in payload["product_ids"]:
            listing = await self.store.find_entity(
                "product_listing", where={"tiktok_product_id": product_id}
            )
            if listing is None:
                unsynced.append(product_id)
                continue
            state, data = listing.state, listing.data
            title = data.get("title") or product_id
            if state == "deactivated":
                unavailable.append(title)
            elif not is_active(state, "approved"):
                unsynced.append(title)
            else:
                items.extend(_shoplazza_items(data, product_id, line_items))
        return [
            {
                "event_id": f"result:{command.idempotency_key}",
                "type": "order.products_resolved",
                "source": "channel",
                "entity": payload["order"],
                "payload": {
                    "authorization_active": active,
                    "unsynced": unsynced,
                    "unavailable": unavailable,
                    "shoplazza_line_items": items,
                },
            }
        ]

    async def resolve_carrier(self, command: OutboxCommand) -> list[dict[str, Any]]:
        """The provider to ship with: the carrier's mapping (LOGI-2), checked against
        the providers TikTok lists for the order's delivery option."""
        payload = command.payload
        found = await self.connection(tiktok_shop_id=payload.get("shop_id"))
        logistics = found[2].get("logistics", {}) if found else {}
        code = payload.get("tracking_company_code") or ""
        order = await self.store.entity(payload["order"])
        option = _delivery_option(order.data if order else {})
        provider, not_offered = provider_for_option(
            logistics, logistics.get("carrier_mapping", {}).get(code), option
        )
        return [
            {
                "event_id": f"result:{command.idempotency_key}",
                "type": "order.carrier_resolved",
                "source": "channel",
                "entity": payload["order"],
                "payload": {
                    "purpose": payload.get("purpose", "ship"),
                    "tracking_number": payload.get("tracking_number") or "",
                    "tracking_company_code": code,
                    "fulfillment_model": logistics.get("fulfillment_model"),
                    "shipping_provider_id": provider,
                    "authorization_active": found is not None and is_authorized(found[1]),
                    "delivery_option_id": option,
                    "not_offered": not_offered,
                },
            }
        ]

    async def retry_unmapped_fulfillments(self, command: OutboxCommand) -> list[dict[str, Any]]:
        """A carrier was just mapped: retry the fulfillments that waited for it (LOGI-3)."""
        code = command.payload["tracking_company_code"]
        orders = [
            order
            for order in await self.store.find_entities(
                "order", where={"fulfillment.tracking_company_code": code}
            )
            if is_active(order.state, "fulfillment.failed")
        ]
        return [
            {
                "event_id": f"result:{command.idempotency_key}>{order.key}",
                "type": "order.retry_fulfillment",
                "source": "channel",
                "entity": order.key,
                "payload": {},
            }
            for order in orders
        ]

    async def resume_refused_work(self, command: OutboxCommand) -> list[dict[str, Any]]:
        """Authorized again: retry the shop's orders whose sync or fulfillment
        push was refused with "authorization inactive" (CONN-4). Work the gate
        held is released by the engine before this runs; an order with its
        push still outstanding is left to it (the retry would be a second push)."""
        tiktok_shop_id = command.payload.get("shop_id")
        if not tiktok_shop_id:
            return []
        orders = await self.store.find_entities("order", where={"shop_id": tiktok_shop_id})
        events = []
        for order in orders:
            sync_refused = _refused(order, "sync")
            push_refused = _refused(order, "fulfillment") and not (
                await self.store.has_command(
                    order.key, "push_shipping", statuses=("pending", "held")
                )
            )
            for refused, event_type in (
                (sync_refused, "order.retry_sync"),
                (push_refused, "order.retry_fulfillment"),
            ):
                if refused:
                    events.append(
                        {
                            "event_id": f"result:{command.idempotency_key}>{order.key}:"
                            f"{event_type}",
                            "type": event_type,
                            "source": "channel",
                            "entity": order.key,
                            "payload": {},
                        }
                    )
        return events


def _refused(order: EntityState, step: str) -> bool:
    """Whether the order's ``step`` (its sync or fulfillment region) failed for
    want of authorization: the region is Failed, with that reason."""
    facts = order.data.get(step)
    return (
        is_active(order.state, f"{step}.failed")
        and isinstance(facts, dict)
        and facts.get("reason") == AUTHORIZATION_INACTIVE
    )


def _delivery_option(order: dict[str, Any]) -> str:
    """The order's delivery option, from the order detail or its line items."""
    detail = order.get("detail", {})
    if detail.get("delivery_option_id"):
        return str(detail["delivery_option_id"])
    options = {i.get("delivery_option_id") for i in detail.get("line_items", [])} - {None, ""}
    return str(options.pop()) if len(options) == 1 else ""


def provider_for_option(
    logistics: dict[str, Any], mapped: str | None, option: str
) -> tuple[str | None, str | None]:
    """(provider id, why not) for a carrier mapped to ``mapped`` shipping an order
    of delivery option ``option``. A mapped provider the option does not list is
    replaced by the option's provider of the same name (TikTok may list a
    carrier under several ids); with none, the push is refused with the
    option's providers named. An option the connection has not listed yet
    leaves the mapped provider to TikTok's judgement."""
    if not mapped:
        return None, None
    offered = logistics.get("delivery_options", {}).get(option) if option else None
    if offered is None:
        return mapped, None
    providers = offered.get("shipping_providers", [])
    if any(sp["id"] == mapped for sp in providers):
        return mapped, None
    names = {sp["id"]: sp["name"] for sp in logistics.get("shipping_providers", [])}
    name = names.get(mapped, mapped)
    same = [sp["id"] for sp in providers if sp["name"].casefold() == name.casefold()]
    if same:
        return same[0], None
    listed = ", ".join(sp["name"] for sp in providers) or "none"
    label = offered.get("name") or option
    return None, (
        f"carrier {name} is not offered by this order's delivery option ({label}); "
        f"TikTok lists: {listed}"
    )


def _shoplazza_items(
    listing: dict[str, Any], product_id: str, line_items: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    product = listing.get("product", {})
    by_sku = {(v.get("sku") or v["id"]): v for v in product.get("variants", [])}
    items = []
    for item in line_items:
        if item.get("product_id") != product_id:
            continue
        variant: dict[str, Any] = by_sku.get(item.get("seller_sku")) or next(
            iter(by_sku.values()), {}
        )
        items.append(
            {
                "product_id": product.get("id"),
                "variant_id": variant.get("id"),
                "quantity": item.get("quantity", 1),
                "price": item.get("sale_price"),
                "tiktok_line_item_id": item.get("id"),
            }
        )
    return items


# Reasons the order chart records when the authorization stops its work; the
# resumption looks for exactly these (CONN-4).
AUTHORIZATION_INACTIVE = "authorization inactive"
# Steps of an order's first sync into Shoplazza. While the authorization is
# inactive they are failed with the reason instead of held: the order's retry
# (on re-authorization, or its timer) starts them again from what is current,
# and a held create beside a retry would create the order in Shoplazza twice.
ORDER_SYNC_STEPS = frozenset({"fetch_order_detail", "create_shoplazza_order"})
# Pushes of tracking to TikTok: held, and shown on the order as waiting.
FULFILLMENT_PUSHES = {"push_shipping": "ship", "update_shipping_info": "correction"}
# Not held: a refresh due while the authorization is inactive has nothing to
# refresh; re-authorizing brings new tokens and arms the refresh timer again.
SKIPPED_WHILE_INACTIVE = frozenset({"refresh_access_token"})
# Reads a timer repeats (the hourly review poll): one held per entity is enough,
# since it reads what is current when it finally runs.
HELD_ONCE = frozenset({"fetch_product_status"})


def _order_event(command: OutboxCommand, type_: str, payload: dict[str, Any]) -> dict[str, Any]:
    return {
        "event_id": f"held:{command.idempotency_key}",
        "type": type_,
        "source": "channel",
        "entity": command.payload["order"],
        "payload": payload,
    }


class AuthorizationGate:
    """Stops platform work while its shop's authorization is inactive (CONN-4, CONN-6).

    Wraps the adapters' handlers. Most work is held: it keeps its place in the
    outbox under the shop's hold key and is released, in order, when the
    connection is authorized again (`resume_held_work`). The steps of an
    order's first sync are failed with "authorization inactive" instead, and
    retried on re-authorization (`ChannelResolvers.resume_refused_work`)."""

    def __init__(self, resolvers: ChannelResolvers, handlers: Mapping[str, Handler]) -> None:
        self.resolvers = resolvers
        self.inner = dict(handlers)

    def handlers(self) -> dict[str, Handler]:
        return {name: self._gated(name) for name in self.inner}

    def _gated(self, name: str) -> Handler:
        inner = self.inner[name]

        async def run(command: OutboxCommand) -> Any:
            payload = command.payload
            found = await self.resolvers.connection(
                shop=payload.get("shop"), tiktok_shop_id=payload.get("shop_id")
            )
            if found is None or is_authorized(found[1]):
                return await inner(command)
            return await self._stopped(command, found[0])

        return run

    async def _stopped(self, command: OutboxCommand, shop: str) -> list[dict[str, Any]]:
        bound = log.bind(entity=command.entity, command=command.type, shop=shop)
        if command.type in SKIPPED_WHILE_INACTIVE:
            bound.info("command skipped: authorization inactive")
            return []
        if command.type in ORDER_SYNC_STEPS and not await self._order_synced(command):
            bound.info("order sync step failed: authorization inactive")
            return [_order_event(command, "order.sync_failed", {"reason": AUTHORIZATION_INACTIVE})]
        if command.type in HELD_ONCE and await self._already_held(command, shop):
            bound.info("command superseded: the same read is already held")
            return []
        events = []
        if command.type in FULFILLMENT_PUSHES and command.payload.get("order"):
            events.append(
                _order_event(
                    command,
                    "order.shipping_push_failed",
                    {
                        "purpose": FULFILLMENT_PUSHES[command.type],
                        "message": f"{AUTHORIZATION_INACTIVE}: held until the shop is "
                        "authorized again",
                    },
                )
            )
        raise CommandHeld(
            f"authorization inactive for {shop}", hold_key=hold_key(shop), events=events
        )

    async def _already_held(self, command: OutboxCommand, shop: str) -> bool:
        return await self.resolvers.store.has_command(
            command.entity,
            command.type,
            statuses=("held",),
            hold_key=hold_key(shop),
            excluding=command.id,
        )

    async def _order_synced(self, command: OutboxCommand) -> bool:
        order = await self.resolvers.store.entity(command.payload.get("order", ""))
        return order is not None and is_active(order.state, "sync.synced")
