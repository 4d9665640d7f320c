"""`channelsync shop ...`: the merchant's buttons on the connection.

`shop authorize SHOP` prints TikTok's authorize URL carrying a fresh nonce
(CONN-7); `shop disconnect KEY` ends the connection (CONN-6).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Annotated

import typer

from engine.cli.common import DbOption, StoreOption
from engine.settings import EngineSettings


def register(app: typer.Typer) -> None:
    shop_app = typer.Typer(help="The shop's connection to TikTok Shop.", no_args_is_help=True)
    shop_app.command("disconnect")(disconnect_command)
    shop_app.command("authorize")(authorize_command)
    app.add_typer(shop_app, name="shop")


def disconnect_command(
    key: Annotated[str, typer.Argument(help="The shop's key, e.g. shop:demo-store.")],
    db: Annotated[Path, typer.Option("--db", help="The SQLite database file.")],
    reason: Annotated[
        str, typer.Option("--reason", help="Shown on the connection as why it ended.")
    ] = "",
) -> None:
    """Disconnect the shop from TikTok Shop: back to Not connected, outbound
    work held until the shop is set up and authorized again."""
    # Imported here: this module is imported to build the command line.
    from engine import Engine
    from engine.charts.configuration import atomic_states
    from engine.chartset import discover_packages
    from engine.cli.common import fail, out
    from engine.cli.in_use import MERCHANT_WAIT, refused_when_in_use
    from statecharts.chart_states import state_labels
    from statecharts.merchant_connection import CHART, UnknownShop, disconnect

    if not db.exists():
        raise fail(f"no database at {db}", 2)

    async def run() -> tuple[str, str | None, str]:
        engine = await Engine.open(
            db,
            list(discover_packages().values()),
            settings=EngineSettings(run_timers=False, run_outbox=False, lock_wait=MERCHANT_WAIT),
        )
        try:
            receipt = await disconnect(engine, key, reason=reason)
            labels: dict[str, str] = {}
            for (name, _version), chart in sorted(engine.charts.versions.items()):
                if name == CHART:  # every installed version: a shop may be on an older one
                    labels.update(state_labels(chart.spec))
            label = labels.get(atomic_states(receipt.to_state or "not_connected")[0], "")
            return receipt.outcome, receipt.reason, label
        finally:
            await engine.stop()

    try:
        with refused_when_in_use():
            outcome, why, label = asyncio.run(run())
    except UnknownShop as unknown:
        raise fail(str(unknown), 2) from None
    if outcome != "transitioned":
        raise fail(why or f"disconnect was {outcome}", 2)
    out.print(f"{key}: {label}; outbound work is held until it is authorized again")


def authorize_command(
    shop: Annotated[str, typer.Argument(help="The shop's key, e.g. shop:demo-store.")],
    db: DbOption = None,
    ttl: Annotated[
        float, typer.Option("--ttl", help="Seconds the link stays usable (default 600).")
    ] = 600.0,
    store_url: StoreOption = None,
) -> None:
    """Print TikTok's authorize URL for the shop: the seller opens it and
    approves, and TikTok sends the code to the callback of `serve` (--db), or
    of a cluster's receivers (--store). The link works once, for this shop,
    within --ttl seconds (CONN-7). Needs TIKTOK_APP_KEY (and TIKTOK_AUTH_URL
    off TikTok's default)."""
    from adapters.tiktok_shop.oauth import AuthorizationRefused, begin_authorization
    from channelsync.settings import TIKTOK_AUTH_URL
    from engine.cli.common import fail, open_existing, out, store_target
    from engine.clock import SystemClock
    from engine.store.errors import StoreError

    app_key = os.environ.get("TIKTOK_APP_KEY", "")
    if not app_key:
        raise fail("missing environment variable TIKTOK_APP_KEY (the TikTok app's key)", 2)
    auth_url = os.environ.get("TIKTOK_AUTH_URL", TIKTOK_AUTH_URL)
    target = store_target(db, store_url)
    if isinstance(target, Path) and not target.exists():
        raise fail(f"no database at {target}", 2)

    async def run() -> str:
        # Only a nonce row is written, beside the event log: no engine is
        # opened, so this works while `serve` or a cluster runs on the database.
        store = await open_existing(target, writable=True)
        try:
            return await begin_authorization(
                store,
                shop,
                auth_url=auth_url,
                app_key=app_key,
                now=SystemClock().now(),
                ttl=ttl,
            )
        finally:
            await store.close()

    try:
        url = asyncio.run(run())
    except (AuthorizationRefused, StoreError) as refused:
        raise fail(str(refused), 2) from None
    out.print(url, markup=False, highlight=False)
