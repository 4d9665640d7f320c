"""A channel test harness: the channel as `channelsync.bootstrap` wires it (the
real engine, charts, resolvers and authorization gate on a SQLite file), with
in-process fakes of the two platforms.

The fakes answer commands the way the adapters will (result events), and keep
every call they received, so a test can assert what reached each platform.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from channelsync.bootstrap import bootstrap
from channelsync.platforms import PlatformHandlers
from channelsync.settings import ChannelSettings
from engine import Engine, FakeClock
from engine.lifecycle import EngineParts
from engine.outbox import OutboxCommand
from engine.settings import EngineSettings
from engine.vault import Vault

US_STORE = "demo-store"
SHOP = f"shop:{US_STORE}"
TIKTOK_SHOP_ID = "7495540735365777507"


# The package size a merchant gives for TikTok (Shoplazza has no such field).
PACKAGE = {"length": 10, "width": 8, "height": 4, "unit": "CENTIMETER"}


def product(
    pid: str,
    *,
    title: str = "",
    images: int = 2,
    gif_at: tuple[int, ...] = (),
    weight: float | None = 0.5,
    price: str = "19.90",
    stock: int = 10,
    published: bool = True,
    variants: int = 1,
    updated_at: str | None = None,
) -> dict[str, Any]:
    """A product shaped as Shoplazza's OpenAPI returns it: Shoplazza's fields only."""
    shaped: dict[str, Any] = {
        "id": pid,
        "title": title or f"Product {pid}",
        "description": "<p>Nice</p>",
        "published": published,
        "images": [
            {
                "src": f"https://cdn.example/{pid}/{i}.{'gif' if i in gif_at else 'jpg'}",
                "width": 800,
                "height": 800,
            }
            for i in range(images)
        ],
        "variants": [
            {
                "id": f"{pid}-v{n}",
                "sku": f"SKU-{pid}-{n}",
                "price": price,
                "inventory_quantity": stock,
                "weight": weight,
                "weight_unit": "kg",
                "option1": f"Size {n}" if variants > 1 else None,
                "option2": None,
                "option3": None,
            }
            for n in range(variants)
        ],
        "collection_ids": [],
    }
    if updated_at is not None:
        shaped["updated_at"] = updated_at
    return shaped


@dataclass
class FakeTikTok:
    clock: FakeClock
    review: dict[str, str] = field(default_factory=dict)  # listing -> ACTIVATE/FAILED/PENDING
    audit_reasons: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    _ids: Any = field(default_factory=lambda: itertools.count(576486316948490000))

    def called(self, name: str) -> list[dict[str, Any]]:
        return [payload for call, payload in self.calls if call == name]

    async def handle(self, command: OutboxCommand) -> list[dict[str, Any]]:
        self.calls.append((command.type, command.payload))
        method = getattr(self, f"on_{command.type}", None)
        return method(command) if method else []

    def _result(self, command: OutboxCommand, entity: str, type_: str, payload: dict) -> list[dict]:
        return [
            {
                "event_id": f"result:{command.idempotency_key}",
                "type": type_,
                "source": "tiktok",
                "entity": entity,
                "payload": payload,
            }
        ]

    def on_create_listing(self, command: OutboxCommand) -> list[dict]:
        return self._result(
            command,
            command.payload["listing"],
            "listing.submitted",
            {
                "product_id": next(self._ids),
                "category_id": "600001",
                "skus": [
                    {"id": str(next(self._ids)), "seller_sku": sku["seller_sku"]}
                    for sku in command.payload["product"]["skus"]
                ],
            },
        )

    def on_edit_listing(self, command: OutboxCommand) -> list[dict]:
        return self._result(
            command,
            command.payload["listing"],
            "listing.submitted",
            {"product_id": command.payload["tiktok_product_id"]},
        )

    def on_activate_listing(self, command: OutboxCommand) -> list[dict]:
        self.review[command.payload["listing"]] = "ACTIVATE"
        return []

    def on_fetch_product_status(self, command: OutboxCommand) -> list[dict]:
        listing = command.payload["listing"]
        status = self.review.get(listing, "PENDING")
        return self._result(
            command,
            listing,
            "listing.review_result",
            {"status": status, "audit_failed_reasons": self.audit_reasons.get(listing, [])},
        )

    def on_fetch_order_detail(self, command: OutboxCommand) -> list[dict]:
        order = dict(self.orders[command.payload["order_id"]])
        if not command.payload["include_recipient"] and not order.pop("leak_address", False):
            order.pop("recipient_address", None)
        order.pop("leak_address", None)
        return self._result(command, command.payload["order"], "order.detail_fetched", order)

    def on_push_shipping(self, command: OutboxCommand) -> list[dict]:
        order = self.orders[command.payload["order_id"]]
        if order.get("status") == "ON_HOLD":
            return self._result(
                command,
                command.payload["order"],
                "order.shipping_push_failed",
                {"code": 21011044, "message": "order is on hold"},
            )
        return self._result(
            command,
            command.payload["order"],
            "order.shipping_pushed",
            {"package_id": "1152921504606846976"},
        )

    def on_update_shipping_info(self, command: OutboxCommand) -> list[dict]:
        return self._result(
            command, command.payload["order"], "order.shipping_pushed", {"purpose": "correction"}
        )

    def on_refresh_access_token(self, command: OutboxCommand) -> list[dict]:
        now = int(self.clock.now())
        return self._result(
            command,
            command.payload["shop"],
            "connection.token_refreshed",
            {
                "access_token_expire_in": now + 7 * 86400,
                "refresh_token_expire_in": now + 60 * 86400,
            },
        )


@dataclass
class FakeShoplazza:
    clock: FakeClock
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    _ids: Any = field(default_factory=lambda: itertools.count(1001))
    # Like the real adapter, the fake opens the sealed address (SEC-3), so
    # `calls` holds what Shoplazza would receive.
    vault: Vault | None = None

    def called(self, name: str) -> list[dict[str, Any]]:
        return [payload for call, payload in self.calls if call == name]

    async def handle(self, command: OutboxCommand) -> list[dict[str, Any]]:
        received = dict(command.payload)
        if self.vault is not None and "recipient_address" in received:
            received["recipient_address"] = self.vault.open_or_none(
                received["order"], received["recipient_address"]
            )
        self.calls.append((command.type, received))
        if command.type == "create_shoplazza_order":
            return [
                {
                    "event_id": f"result:{command.idempotency_key}",
                    "type": "order.shoplazza_created",
                    "source": "shoplazza",
                    "entity": command.payload["order"],
                    "payload": {
                        "shoplazza_order_id": f"SL-{next(self._ids)}",
                        "created_at": self.clock.now(),
                    },
                }
            ]
        return []


TIKTOK_COMMANDS = (
    "create_listing",
    "edit_listing",
    "fetch_product_status",
    "update_price",
    "update_inventory",
    "deactivate_listing",
    "activate_listing",
    "fetch_order_detail",
    "push_shipping",
    "update_shipping_info",
    "refresh_access_token",
    "fetch_shipping_providers",
)
SHOPLAZZA_COMMANDS = (
    "create_shoplazza_order",
    "update_shoplazza_payment",
    "update_shoplazza_fulfillment",
    "update_shoplazza_address",
    "cancel_shoplazza_order",
)


@dataclass
class FakePlatforms:
    """The fakes as the channel's `Platforms`: every platform command goes to
    them behind the authorization gate, as the real clients' do."""

    tiktok: FakeTikTok
    shoplazza: FakeShoplazza

    async def open(self, parts: EngineParts) -> PlatformHandlers:
        # Like the real adapter, the fake opens sealed addresses (SEC-3).
        self.shoplazza.vault = parts.vault
        gated = {name: self.tiktok.handle for name in TIKTOK_COMMANDS}
        gated |= {name: self.shoplazza.handle for name in SHOPLAZZA_COMMANDS}
        return PlatformHandlers(gated=gated)

    async def close(self) -> None:
        return None


class Channel:
    """The engine plus fakes, with the merchant's buttons as methods."""

    def __init__(
        self, engine: Engine, clock: FakeClock, tiktok: FakeTikTok, shoplazza: FakeShoplazza
    ) -> None:
        self.engine, self.clock, self.tiktok, self.shoplazza = engine, clock, tiktok, shoplazza
        self._n = itertools.count()

    @classmethod
    async def open(cls, db: Path, clock: FakeClock, **chart_settings: Any) -> Channel:
        """The channel on ``db`` through the composition root, with the fakes as
        its platforms; the test drives time and the outbox (`settle`)."""
        tiktok, shoplazza = FakeTikTok(clock), FakeShoplazza(clock)
        settings = ChannelSettings(
            db=db,
            chart_settings=chart_settings,
            engine=EngineSettings(run_timers=False, run_outbox=False),
        )
        app = await bootstrap(settings, clock=clock, platforms=FakePlatforms(tiktok, shoplazza))
        return cls(app.engine, clock, tiktok, shoplazza)

    async def send(
        self,
        event_type: str,
        entity: str,
        payload: dict | None = None,
        *,
        event_id: str | None = None,
        settle: bool = True,
    ):
        receipt = await self.engine.publish(
            self.engine.make_event(
                event_type,
                entity,
                payload or {},
                event_id=event_id or f"t{next(self._n)}",
                source="test",
            )
        )
        if settle:
            await self.settle()
        return receipt

    async def settle(self) -> None:
        """Carry out every due command and timer until nothing is left to do."""
        for _ in range(50):
            fired = await self.engine.fire_due_timers()
            done = await self.engine.outbox.run_until_idle()
            if not fired and not done:
                return
        raise AssertionError("the channel did not settle")

    async def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)
        await self.settle()

    async def state(self, key: str) -> str | None:
        entity = await self.engine.entity(key)
        return entity.state if entity else None

    async def data(self, key: str) -> dict[str, Any]:
        entity = await self.engine.entity(key)
        return entity.data if entity else {}

    async def connect(
        self,
        *,
        model: str = "FBS",
        providers: tuple[tuple[str, str], ...] = (
            ("7117858858072016686", "USPS"),
            ("7117859084333745966", "UPS"),
        ),
    ) -> None:
        await self.send(
            "connection.start_setup",
            SHOP,
            {"store_domain": f"{US_STORE}.myshoplaza.com", "store_country": "US"},
        )
        await self.send("connection.connect", SHOP)
        await self.send("connection.choose_account_type", SHOP, {"account_type": "seller"})
        await self.send("connection.accept_terms", SHOP, {"accepted": True})
        await self.authorize()
        await self.send("logistics.set_fulfillment_model", SHOP, {"fulfillment_model": model})
        await self.send(
            "logistics.providers_listed",
            SHOP,
            {"shipping_providers": [{"id": i, "name": n} for i, n in providers]},
        )

    async def authorize(self) -> Any:
        now = int(self.clock.now())
        return await self.send(
            "connection.authorized",
            SHOP,
            {
                "shop_id": TIKTOK_SHOP_ID,
                "shop_cipher": "GCP_XF90igAAAABh00qsWgtvOiGFNqyubMt3",
                "seller_base_region": "US",
                "access_token_expire_in": now + 7 * 86400,
                "refresh_token_expire_in": now + 60 * 86400,
            },
        )

    async def add_products(
        self, *products: dict[str, Any], package: dict[str, Any] | None = PACKAGE
    ) -> Any:
        """The merchant adds products to sync, having given each its package size
        for TikTok (``package=None``: not given). The attributes land before the
        listings are created, as when the merchant sets them first."""
        adding = await self.send("products.add", SHOP, {"products": list(products)}, settle=False)
        await self._give_package(adding, products, package)
        return adding

    async def add_collection(
        self,
        collection_id: str,
        *products: dict[str, Any],
        package: dict[str, Any] | None = PACKAGE,
    ) -> Any:
        """The merchant adds a collection (PROD-1), package sizes given as in `add_products`."""
        adding = await self.send(
            "products.add_collection",
            SHOP,
            {"collection_id": collection_id, "products": list(products)},
            settle=False,
        )
        await self._give_package(adding, products, package)
        return adding

    async def _give_package(
        self, adding: Any, products: tuple[dict[str, Any], ...], package: dict[str, Any] | None
    ) -> None:
        """Before the new listings are created, the package size of each product
        not yet in sync (one already in sync keeps what it has)."""
        if adding.outcome == "transitioned" and package is not None:
            for shaped in products:
                if await self.state(listing(shaped["id"])) is None:
                    await self.set_attributes(
                        shaped["id"], settle=False, package_dimensions=package
                    )
        await self.settle()

    async def set_attributes(self, pid: str, *, settle: bool = True, **attributes: Any) -> Any:
        """`channelsync products set`: the TikTok-only attributes (PROD-10)."""
        return await self.send("listing.attributes_set", listing(pid), attributes, settle=settle)

    async def approve(self, pid: str) -> None:
        """TikTok's review passes (the product-status webhook, then a fetch)."""
        await self.review(pid, "ACTIVATE")

    async def review(self, pid: str, status: str, reasons: list | None = None) -> Any:
        return await self.send(
            "listing.review_result",
            listing(pid),
            {"status": status, "audit_failed_reasons": reasons or []},
        )

    def tiktok_order(
        self,
        order_id: str,
        *,
        status: str = "UNPAID",
        product_ids: tuple[str, ...] = (),
        fbt: bool = False,
    ) -> None:
        self.tiktok.orders[order_id] = {
            "id": order_id,
            "status": status,
            "create_time": 1_699_990_000,
            "update_time": 1_699_990_000,
            "fulfillment_type": "FULFILLMENT_BY_TIKTOK" if fbt else "FULFILLMENT_BY_SELLER",
            "line_items": [
                {
                    "id": f"li-{pid}",
                    "product_id": pid,
                    "sku_id": f"sku-{pid}",
                    "seller_sku": "",
                    "quantity": 1,
                    "sale_price": "19.90",
                }
                for pid in product_ids
            ],
            "payment": {"total_amount": "19.90", "currency": "USD"},
            "recipient_address": {
                "name": "Ada Lovelace",
                "phone_number": "(+1)555-0100",
                "full_address": "1 Main St, Springfield, IL 62701",
            },
        }

    async def order_status(self, order_id: str, status: str, update_time: int, **extra: Any) -> Any:
        if order_id in self.tiktok.orders:
            self.tiktok.orders[order_id]["status"] = status
        return await self.send(
            "order.status_changed",
            f"order:{order_id}",
            {
                "order_id": order_id,
                "shop_id": TIKTOK_SHOP_ID,
                "order_status": status,
                "update_time": update_time,
                **extra,
            },
        )

    async def tiktok_product_id(self, pid: str) -> str:
        return (await self.data(listing(pid)))["tiktok_product_id"]


def listing(pid: str) -> str:
    return f"listing:{US_STORE}:{pid}"
