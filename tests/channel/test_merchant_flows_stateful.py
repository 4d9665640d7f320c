"""Acceptance: connection, products and orders driven together, over HTTP.

A hypothesis state machine plays a merchant, buyers and TikTok against the
strict sandboxes and the real channel (receiver, bus, outbox, timers, pull)
on loopback HTTP, one event loop, one FakeClock. After every step, once the
system is quiescent, it checks what a merchant would state:

1. a product live on TikTok shows Approved in the Product Sync List (PROD-2,
   PROD-11, PROD-12);
2. an order's Shoplazza copy never moves backwards (ORD-6, ORD-8);
3. no outbound call is refused by a sandbox as a malformed request (PLAT-4,
   PLAT-10);
4. nothing stays stuck without a visible reason and an operator action
   (ENG-6, CONN-4, PROD-5, PROD-11): every command not done is pending, held or parked with
   a reason; every failed or rejected listing or order shows its reason; a
   listing or an order in a working state has work under way; nothing is
   held for the authorization while the shop is authorized; a product
   published in Shoplazza is not left Deactivated.

docs/testing-merchant-flows.md says how to run it and how to replay a failure.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from adapters.sandbox.story import SHOP, STORE
from engine.outbox import list_commands
from statecharts.merchant import set_product_attributes
from statecharts.views import product_sync_list, region_status
from tests.channel.merchant_world import (
    MALFORMED,
    Stage,
    World,
    authorize,
    set_up,
    start_world,
)

ACTIVE = ("authorized.active", "authorized.expiring")
DONE = ("done", "discarded")
TITLES = (
    "Linen beach shirt, relaxed fit",
    "Replica designer sunglasses",  # TikTok's review refuses it
    "Straw sun hat \N{SUN WITH FACE}",
    "x" * 255,  # TikTok's longest title
)
PRICES = ("0.01", "19.90", "24.00", "7600.00")  # TikTok's US price range, ends included
STOCK = (0, 1, 25, 99_999)
DELIVERY = st.sampled_from(["once", "twice", "reversed"])
WAITS = (60, 30 * 60, 3600, 2 * 3600, 26 * 3600, 8 * 86_400)
# What a buyer or TikTok can do next to an order, by TikTok's status.
BUYER_MOVES: dict[str, tuple[str, ...]] = {
    "UNPAID": ("pay", "cancel"),
    "ON_HOLD": ("cancel",),
    "AWAITING_SHIPMENT": ("cancel",),
    "IN_TRANSIT": ("deliver",),
    "DELIVERED": ("complete", "refund"),
    "COMPLETED": ("refund",),
}


_stage: Stage | None = None


def stage() -> Stage:
    """The servers and event loop every example of this module shares."""
    global _stage
    if _stage is None:
        _stage = Stage()
    return _stage


@pytest.fixture(scope="module", autouse=True)
def _close_the_stage() -> Iterator[None]:
    global _stage
    yield
    if _stage is not None:
        _stage.close()
        _stage = None


def line_item(product: dict[str, Any]) -> dict[str, Any]:
    """What a buyer's cart holds: TikTok's product, its SKU id and seller SKU."""
    body = product.get("body") or {}
    skus = product.get("skus") or body.get("skus") or [{}]
    sku = skus[0]
    item = {"product_id": product["id"], "seller_sku": sku.get("seller_sku", "")}
    if sku.get("id"):
        item["sku_id"] = sku["id"]
    return item


class MerchantFlows(RuleBasedStateMachine):
    """One shop, its summer collection, and everything that happens to it."""

    def __init__(self) -> None:
        super().__init__()
        self.world: World | None = None
        self.tmp: Path | None = None
        self.connection = "not_connected"

    # ------------------------------------------------------------- plumbing

    def run(self, coro: Any) -> Any:
        return stage().runner.run(coro)

    async def settle(self) -> None:
        assert self.world is not None
        await self.world.settle()
        entity = await self.world.service.engine.entity(SHOP)
        self.connection = entity.state if entity is not None else "not_connected"

    def act(self, action: Any, delivery: str = "once") -> None:
        """Let a platform do `action` (sync), deliver its webhooks as drawn, settle."""
        world = self.w
        tiktok, shoplazza = world.tiktok_deliveries, world.shoplazza_deliveries
        tiktok.hold()
        shoplazza.hold()
        try:
            action()
        finally:
            for deliveries in (tiktok, shoplazza):
                deliveries.release(reverse=delivery == "reversed", twice=delivery == "twice")
        self.run(self.settle())

    @property
    def w(self) -> World:
        assert self.world is not None
        return self.world

    @initialize()
    def connect_and_add_the_summer_collection(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="merchant-flows-"))

        async def start() -> World:
            world = await start_world(stage(), self.tmp / "channel.db", seed=7)
            self.world = world
            await set_up(world)
            await world.service.add_collection(SHOP, "summer")
            await self.settle()
            return world

        self.run(start())

    def teardown(self) -> None:
        try:
            if self.world is not None:
                self.run(self.world.stop())
        finally:
            if self.tmp is not None:
                shutil.rmtree(self.tmp, ignore_errors=True)

    def shoplazza_product(self, pick: int) -> str | None:
        ids = sorted(self.w.shoplazza.products)
        return ids[pick % len(ids)] if ids else None

    def tiktok_products(self, *statuses: str) -> list[dict[str, Any]]:
        return [p for _, p in sorted(self.w.tiktok.products.items()) if p["status"] in statuses]

    # ------------------------------------------------------------- the merchant in Shoplazza

    @rule(pick=st.integers(0, 7), title=st.sampled_from(TITLES))
    def merchant_edits_title(self, pick: int, title: str) -> None:
        if (pid := self.shoplazza_product(pick)) is not None:
            self.act(lambda: self.w.shoplazza.product_action(pid, "update", title=title))

    @rule(pick=st.integers(0, 7), price=st.sampled_from(PRICES))
    def merchant_edits_price(self, pick: int, price: str) -> None:
        if (pid := self.shoplazza_product(pick)) is not None:
            self.act(lambda: self.w.shoplazza.product_action(pid, "update", price=price))

    @rule(pick=st.integers(0, 7), stock=st.sampled_from(STOCK))
    def merchant_edits_stock(self, pick: int, stock: int) -> None:
        if (pid := self.shoplazza_product(pick)) is not None:
            self.act(
                lambda: self.w.shoplazza.product_action(pid, "update", inventory_quantity=stock)
            )

    @rule(pick=st.integers(0, 7), published=st.booleans())
    def merchant_publishes(self, pick: int, published: bool) -> None:
        if (pid := self.shoplazza_product(pick)) is not None:
            self.act(lambda: self.w.shoplazza.product_action(pid, "update", published=published))

    @rule(pick=st.integers(0, 7))
    def merchant_deletes_product(self, pick: int) -> None:
        if (pid := self.shoplazza_product(pick)) is not None:
            self.act(lambda: self.w.shoplazza.product_action(pid, "delete"))

    @rule(
        pick=st.integers(0, 7),
        dimensions=st.tuples(st.integers(1, 120), st.integers(1, 120), st.integers(1, 120)),
        unit=st.sampled_from(["CENTIMETER", "INCH"]),
        category=st.sampled_from([None, "601303", "600942"]),
    )
    def merchant_sets_tiktok_attributes(
        self, pick: int, dimensions: tuple[int, int, int], unit: str, category: str | None
    ) -> None:
        """The TikTok-only attributes Shoplazza has no field for (PROD-1, PROD-7)."""
        if (pid := self.shoplazza_product(pick)) is None:
            return
        length, width, height = dimensions

        async def set_attributes() -> None:
            await set_product_attributes(
                self.w.service.engine,
                f"listing:{STORE}:{pid}",
                category_id=category,
                package_dimensions={
                    "length": length,
                    "width": width,
                    "height": height,
                    "unit": unit,
                },
            )
            await self.settle()

        self.run(set_attributes())

    @rule(pick=st.integers(0, 7), carrier=st.sampled_from(["usps", "ups"]), n=st.integers(0, 99))
    def merchant_fulfills_in_shoplazza(self, pick: int, carrier: str, n: int) -> None:
        open_orders = [
            oid
            for oid, o in sorted(self.w.shoplazza.orders.items())
            if o.get("status") != "cancelled" and o.get("fulfillment_status") != "shipped"
        ]
        if open_orders:
            oid = open_orders[pick % len(open_orders)]
            tracking = f"94001118992231974{n:05d}"
            self.act(lambda: self.w.shoplazza.fulfill(oid, tracking, carrier))

    # ------------------------------------------------------------- TikTok's review

    @rule(pick=st.integers(0, 7), approve=st.booleans(), delivery=DELIVERY)
    def tiktok_reviews(self, pick: int, approve: bool, delivery: str) -> None:
        """A review result, also a later one for a rejected product (PROD-5)."""
        candidates = self.tiktok_products("PENDING", "FAILED")
        if not candidates:
            return
        product = candidates[pick % len(candidates)]

        def review() -> None:
            tiktok = self.w.tiktok
            now = int(tiktok.clock.now())
            if approve:
                product.update(status="ACTIVATE", audit_failed_reasons=[])
                audit = {"status": "APPROVED", "pre_approved_reasons": []}
            else:
                product.update(
                    status="FAILED",
                    audit_failed_reasons=[
                        {
                            "position": "main_images",
                            "reasons": ["the main image shows a watermark"],
                            "suggestions": ["upload an image without a watermark"],
                        }
                    ],
                )
                audit = {"status": "FAILED"}
            tiktok.send_webhook(
                37, {"product_id": int(product["id"]), "audit": audit, "update_time": now}
            )

        self.act(review, delivery)

    # ------------------------------------------------------------- buyers on TikTok

    @rule(pick=st.integers(0, 7), quantity=st.integers(1, 3), delivery=DELIVERY)
    def buyer_orders(self, pick: int, quantity: int, delivery: str) -> None:
        live = self.tiktok_products("ACTIVATE")
        if live:
            item = {**line_item(live[pick % len(live)]), "quantity": quantity}
            self.act(lambda: self.w.tiktok.create_order([item]), delivery)

    @rule(pick=st.integers(0, 7), choice=st.integers(0, 1), delivery=DELIVERY)
    def buyer_acts(self, pick: int, choice: int, delivery: str) -> None:
        """Pay (the hour On Hold follows), cancel, receive, complete, refund."""
        orders = [o for _, o in sorted(self.w.tiktok.orders.items()) if o["status"] in BUYER_MOVES]
        if orders:
            order = orders[pick % len(orders)]
            moves = BUYER_MOVES[order["status"]]
            move = moves[choice % len(moves)]
            self.act(lambda: self.w.tiktok.order_action(order["id"], move), delivery)

    @rule(pick=st.integers(0, 7), delivery=DELIVERY)
    def buyer_pays_then_cancels_at_once(self, pick: int, delivery: str) -> None:
        """Two status changes in one breath: their webhooks may come the other way round."""
        unpaid = [o for _, o in sorted(self.w.tiktok.orders.items()) if o["status"] == "UNPAID"]
        if unpaid:
            order_id = unpaid[pick % len(unpaid)]["id"]

            def both() -> None:
                self.w.tiktok.order_action(order_id, "pay")
                self.w.tiktok.order_action(order_id, "cancel")

            self.act(both, delivery)

    # ------------------------------------------------------------- the authorization

    @precondition(lambda self: self.connection in ACTIVE)
    @rule()
    def seller_deauthorizes_on_tiktok(self) -> None:
        """Webhook 6; TikTok's tokens stop working at once (CONN-4)."""

        def deauthorize() -> None:
            self.w.revoke_tokens()
            self.w.tiktok.send_webhook(6, {"message": "The seller deauthorized the app."})

        self.act(deauthorize)

    @precondition(lambda self: self.connection in ACTIVE)
    @rule(within=st.sampled_from([3600, 86_400]))
    def authorization_is_about_to_expire(self, within: int) -> None:
        """Webhook 7; the tokens stop working at the expiration time."""
        expires = int(self.w.clock.now()) + within

        def warn() -> None:
            self.w.expires_at = expires
            self.w.tiktok.send_webhook(
                7, {"message": "Authorization expires soon.", "expiration_time": str(expires)}
            )

        self.act(warn)

    @precondition(lambda self: self.connection not in ACTIVE)
    @rule()
    def seller_authorizes_again(self) -> None:
        self.w.expires_at = None
        self.run(authorize(self.w))
        self.run(self.settle())

    @rule()
    def merchant_uninstalls_the_app(self) -> None:
        """Shoplazza revokes the store's token and sends app/uninstalled (PLAT-9)."""
        self.act(self.w.shoplazza.uninstall)

    @precondition(lambda self: self.connection not in ACTIVE)
    @rule()
    def merchant_sets_up_again(self) -> None:
        """Reinstall: the whole setup again, terms included (CONN-2)."""
        self.w.expires_at = None
        self.run(set_up(self.w))
        self.run(self.settle())

    # ------------------------------------------------------------- deliveries and time

    @rule(platform=st.sampled_from(["tiktok", "shoplazza"]), index=st.integers(0, 200))
    def a_delivery_comes_again_late(self, platform: str, index: int) -> None:
        """A platform retries a webhook it already delivered, after later ones."""
        deliveries = (
            self.w.tiktok_deliveries if platform == "tiktok" else self.w.shoplazza_deliveries
        )
        if deliveries.replay(index):
            self.run(self.settle())

    @rule(seconds=st.sampled_from(WAITS))
    def time_passes(self, seconds: int) -> None:
        """Holds end, reviews finish, timers fire, retries come due."""
        self.run(self.w.advance(seconds))
        self.run(self.settle())

    # ------------------------------------------------------------- what a merchant states

    # One invariant each, so that hypothesis shrinks each broken promise to
    # its own minimal example and reports them side by side.

    @invariant()
    def a_live_product_shows_approved(self) -> None:
        """1. PROD-2, PROD-11, PROD-12."""
        if self.world is not None:
            broken = self.run(self.live_products_show_approved())
            assert not broken, "\n".join(broken)

    @invariant()
    def a_shoplazza_order_never_moves_back(self) -> None:
        """2. ORD-6, ORD-8."""
        if self.world is not None:
            broken = self.shoplazza_orders_never_move_back()
            assert not broken, "\n".join(broken)

    @invariant()
    def no_call_is_refused_as_malformed(self) -> None:
        """3. PLAT-4, PLAT-10."""
        if self.world is not None:
            broken = self.no_malformed_requests()
            assert not broken, "\n".join(broken)

    # Invariant 4 in four parts, each its own failure for hypothesis.

    def stuck(self, part: str) -> None:
        if self.world is not None:
            broken = [f for f in self.run(self.nothing_stuck_without_a_reason()) if part in f]
            assert not broken, "\n".join(broken)

    @invariant()
    def no_command_is_stuck_without_a_reason(self) -> None:
        """4a. ENG-6, CONN-4: the outbox, as an operator lists it."""
        self.stuck("[4a]")

    @invariant()
    def no_listing_is_stuck_without_a_reason(self) -> None:
        """4b. PROD-5, PROD-11: the Product Sync List."""
        self.stuck("[4b]")

    @invariant()
    def no_order_is_stuck_without_a_reason(self) -> None:
        """4c. ORD-1, LOGI-3: the order list."""
        self.stuck("[4c]")

    @invariant()
    def the_connection_is_not_stuck_without_a_reason(self) -> None:
        """4d. CONN-4, PLAT-8: the connection and the order pull."""
        self.stuck("[4d]")

    async def live_products_show_approved(self) -> list[str]:
        """Invariant 1. Checked while the shop is authorized: without the
        authorization the channel cannot act on TikTok, and invariant 4 then
        asks that the held work shows why."""
        if self.connection not in ACTIVE:
            return []
        rows = await product_sync_list(self.w.service.engine.store)
        by_tiktok_id: dict[str, list[Any]] = {}
        for row in rows:
            if row.tiktok_product_id:
                by_tiktok_id.setdefault(str(row.tiktok_product_id), []).append(row)
        failures = []
        for product in self.tiktok_products("ACTIVATE"):
            shown = by_tiktok_id.get(product["id"], [])
            if not shown:
                failures.append(
                    f"[1] TikTok product {product['id']} is live, but no listing shows it"
                )
            for row in shown:
                if row.status_label != "Approved":
                    failures.append(
                        f"[1] TikTok product {product['id']} is live (ACTIVATE), but "
                        f"{row.key} shows {row.status_label!r}"
                    )
        return failures

    def shoplazza_orders_never_move_back(self) -> list[str]:
        """Invariant 2: status, financial and fulfillment status only move forward."""
        self.w.watch.observe(self.w.shoplazza.orders)
        return [f"[2] {problem}" for problem in self.w.watch.problems]

    def no_malformed_requests(self) -> list[str]:
        """Invariant 3: a sandbox refuses nothing for its shape."""
        return [f"[3] {r}" for r in self.w.refusals if r.kind == MALFORMED]

    async def nothing_stuck_without_a_reason(self) -> list[str]:
        """Invariant 4."""
        engine = self.w.service.engine
        store = engine.store
        now = engine.clock.now()
        failures: list[str] = []
        commands = [c for c in await list_commands(store) if c.status not in DONE]
        busy = {c.entity for c in commands}
        timers = {row[0] for row in await store.fetchall("SELECT entity FROM timers")}
        for command in commands:
            label = f"[4a] command {command.id} {command.type} for {command.entity}"
            if command.status not in ("pending", "held", "parked"):
                failures.append(f"{label} is {command.status!r}, not pending, held or parked")
            elif command.status == "pending" and command.attempts == 0:
                # Never tried: fine if it is not due yet or waits in line
                # behind an earlier pending command of its entity (which
                # then carries the reason); not if nothing can run it.
                due = await store.fetchall(
                    "SELECT available_at FROM outbox WHERE id = ?", (command.id,)
                )
                queued_behind = any(
                    c.entity == command.entity and c.id < command.id and c.status == "pending"
                    for c in commands
                )
                if command.type not in engine.outbox.handlers:
                    failures.append(f"{label} has no handler: nothing will ever carry it out")
                elif due and due[0][0] <= now and not queued_behind:
                    failures.append(f"{label} is due, was never tried, and nothing carries it out")
            elif not command.last_error:
                failures.append(f"{label} is {command.status} without a reason")
            if command.status == "held" and self.connection in ACTIVE:
                failures.append(
                    f"{label} is still held ({command.last_error}) though the shop is authorized"
                )
        for row in await product_sync_list(store):
            if row.status == "rejected" and not row.failure_reasons:
                failures.append(f"[4b] {row.key} is Rejected without a reason")
            if row.status == "pending_sync" and row.key not in busy:
                failures.append(f"[4b] {row.key} is Pending Sync with nothing under way")
            if (
                row.status == "in_review"
                and row.key not in busy | timers
                and not self._tiktok_reviewing(row.tiktok_product_id)
            ):
                failures.append(
                    f"[4b] {row.key} is In Review, TikTok is not reviewing it "
                    "and no poll is scheduled"
                )
            product = self.w.shoplazza.products.get(row.product_id)
            if (
                row.status == "deactivated"
                and product is not None
                and product.get("published")
                and self.connection in ACTIVE
                and row.key not in busy
            ):
                failures.append(
                    f"[4b] {row.key} stays Deactivated though the product is published "
                    "in Shoplazza again, and nothing is under way to reactivate it"
                )
        for entity in await engine.entities(chart="order"):
            # The order's sync and push statuses are its regions' states; the
            # reasons are facts in its data.
            for part in ("sync", "fulfillment"):
                status = region_status(entity.state, part)
                facts = entity.data.get(part, {})
                if status == "failed" and not facts.get("reason"):
                    failures.append(f"[4c] {entity.key}: {part} failed without a reason")
                if status in ("syncing", "pushing", "resolving") and entity.key not in (
                    busy | timers
                ):
                    failures.append(
                        f"[4c] {entity.key}: {part} is {status!r} with nothing under way"
                    )
        failures.extend(
            f"[4d] the order pull failed while the shop shows as connected: {failure}"
            for failure in self.w.pull_failures
        )
        shop = await engine.entity(SHOP)
        if shop is not None and shop.state == "inactive" and not shop.data.get("inactive_reason"):
            failures.append("[4d] the connection is inactive without a reason")
        return failures

    def _tiktok_reviewing(self, tiktok_product_id: str | None) -> bool:
        product = self.w.tiktok.products.get(str(tiktok_product_id))
        return product is not None and product["status"] == "PENDING"


MerchantFlows.TestCase.settings = settings(
    max_examples=25,
    stateful_step_count=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    print_blob=True,
)

# Acceptance of issue 12: PROD-2, PROD-5, PROD-11, PROD-12, ORD-6, ORD-8, CONN-2, CONN-4,
# PLAT-4, PLAT-10, ENG-6.
TestMerchantFlows = MerchantFlows.TestCase
