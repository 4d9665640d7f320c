"""The listing and connection charts' version 1 stays installed (ENG-9): a log
written under it checks with version 2 installed, `migrate` moves its
entities into version 2's substates by their data, and `check` still passes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine import ChartSet, Engine, FakeClock
from engine.chartset import ChartPackage
from engine.replay import check
from engine.settings import EngineSettings
from engine.store.sqlite import SQLiteStore
from engine.version_migration import plan_moves, publish_moves
from statecharts import CHART_DIR, RULES, chart_package
from statecharts.connection import is_authorized
from tests.channel.harness import PACKAGE, SHOP, TIKTOK_SHOP_ID, listing, product

VERSION_1 = ChartSet.load(
    [
        ChartPackage(
            "tiktok_shop",
            [
                CHART_DIR / "versions" / "shop_connection_v1.yaml",
                CHART_DIR / "versions" / "product_listing_v1.yaml",
                CHART_DIR / "order.yaml",
            ],
            RULES,
        )
    ]
)
INSTALLED = ChartSet.load([chart_package()])
QUIET = EngineSettings(run_timers=False, run_outbox=False)


class Log:
    """Publishes test events with ids of their own, to one engine."""

    def __init__(self, engine: Engine, prefix: str) -> None:
        self.engine, self.prefix, self.count = engine, prefix, 0

    async def __call__(self, entity: str, event_type: str, payload: dict[str, Any]) -> Any:
        self.count += 1
        return await self.engine.publish(
            self.engine.make_event(
                event_type, entity, payload, event_id=f"{self.prefix}{self.count}", source="test"
            )
        )


async def _write_version_1_log(db: Path, clock: FakeClock) -> None:
    """A shop warned of its authorization's end, and four listings each in a
    cycle version 1 kept in data: an edit queued behind the create, a held
    edit, a local rejection, and an edit already sent behind a create."""
    engine = await Engine.open(db, charts=VERSION_1, clock=clock, settings=QUIET)
    send = Log(engine, "v1-")
    try:
        await send(SHOP, "connection.start_setup", {"store_domain": "s", "store_country": "US"})
        await send(SHOP, "connection.connect", {})
        await send(SHOP, "connection.choose_account_type", {"account_type": "seller"})
        await send(SHOP, "connection.accept_terms", {"accepted": True})
        now = int(clock.now())
        grant = {
            "shop_id": TIKTOK_SHOP_ID,
            "seller_base_region": "US",
            "access_token_expire_in": now + 7 * 86400,
            "refresh_token_expire_in": now + 60 * 86400,
        }
        await send(SHOP, "connection.authorized", grant)
        warning = {"message": "expiring", "expiration_time": now + 86400}
        await send(SHOP, "connection.authorization_expiring", warning)
        for pid in ("queued", "held", "sent"):
            await send(listing(pid), "listing.attributes_set", {"package_dimensions": PACKAGE})
            await send(listing(pid), "listing.added", {"shop": SHOP, "product": product(pid)})
        renamed = {"product": product("queued", title="Renamed")}
        await send(listing("queued"), "listing.product_updated", renamed)
        await send(
            listing("sent"), "listing.product_updated", {"product": product("sent", title="New")}
        )
        for pid in ("held", "sent"):
            await send(listing(pid), "listing.submitted", {"product_id": f"tt-{pid}"})
        await send(listing("held"), "listing.review_result", {"status": "ACTIVATE"})
        failing = {"product": product("held", weight=0)}
        await send(listing("held"), "listing.product_updated", failing)
        await send(listing("local"), "listing.added", {"shop": SHOP, "product": product("local")})
    finally:
        await engine.stop()


async def _checked(db: Path) -> str | None:
    store = await SQLiteStore.open_readonly(db)
    try:
        result = await check(store, INSTALLED)
        return result.divergence.describe() if result.divergence else None
    finally:
        await store.close()


async def _states(engine: Engine) -> dict[str, tuple[str, int]]:
    return {
        e.key: (e.state, e.chart_version) for e in await engine.entities() if e.chart != "order"
    }


async def test_a_version_1_log_checks_and_migrates_into_version_2s_substates(
    db_path: Path, clock: FakeClock
) -> None:
    await _write_version_1_log(db_path, clock)
    assert await _checked(db_path) is None

    engine = await Engine.open(db_path, charts=INSTALLED, clock=clock, settings=QUIET)
    try:
        assert await _states(engine) == {
            SHOP: ("expiring", 1),
            listing("queued"): ("pending_sync", 1),
            listing("held"): ("approved", 1),
            listing("sent"): ("in_review", 1),
            listing("local"): ("rejected", 1),
        }
        # Not migrated yet: the gate still sees a version 1 shop as authorized.
        shop = await engine.entity(SHOP)
        assert shop is not None and is_authorized(shop.state)
        await publish_moves(engine, await plan_moves(engine.store, INSTALLED))
        assert await _states(engine) == {
            SHOP: ("authorized.expiring", 2),
            listing("queued"): ("pending_sync.edited", 2),
            listing("held"): ("approved.edit_held", 2),
            listing("sent"): ("in_review.reviewing", 2),
            listing("local"): ("rejected.failing_checks", 2),
        }
        queued = await engine.entity(listing("queued"))
        assert queued is not None and "edit_after_submission" not in queued.data
        # Version 2 sends the queued edit once TikTok answers the create.
        answered = await Log(engine, "v2-")(
            listing("queued"), "listing.submitted", {"product_id": "tt-queued"}
        )
        assert answered.to_state == "in_review.reviewing"
        assert list(answered.commands) == ["edit_listing"]
    finally:
        await engine.stop()
    assert await _checked(db_path) is None
