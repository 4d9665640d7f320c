"""`channelsync shop disconnect KEY`: the merchant's Disconnect button (CONN-6)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from statecharts.merchant_connection import CHART, UnknownShop, disconnect


def register(app: typer.Typer) -> None:
    shop_app = typer.Typer(help="The shop's connection to TikTok Shop.", no_args_is_help=True)
    app.add_typer(shop_app, name="shop")

    @shop_app.command("disconnect")
    def disconnect_command(
        key: Annotated[str, typer.Argument(help="The shop's key, e.g. shop:demo-store.")],
        db: Annotated[Path, typer.Option("--db", help="The SQLite database file.")],
        reason: Annotated[
            str, typer.Option("--reason", help="Shown on the connection as why it ended.")
        ] = "",
    ) -> None:
        """Disconnect the shop from TikTok Shop: back to Not connected, outbound
        work held until the shop is set up and authorized again."""
        from engine import Engine
        from engine.chartset import discover_packages
        from engine.cli.in_use import MERCHANT_WAIT, refused_when_in_use
        from engine.cli.main import _fail, out

        if not db.exists():
            raise _fail(f"no database at {db}", 2)

        async def run() -> tuple[str, str | None, str]:
            engine = await Engine.open(
                db,
                list(discover_packages().values()),
                run_timers=False,
                run_outbox=False,
                lock_wait=MERCHANT_WAIT,
            )
            try:
                receipt = await disconnect(engine, key, reason=reason)
                label = (
                    engine.charts.by_name[CHART]
                    .spec.states[receipt.to_state or "not_connected"]
                    .label
                )
                return receipt.outcome, receipt.reason, label or ""
            finally:
                await engine.stop()

        try:
            with refused_when_in_use():
                outcome, why, label = asyncio.run(run())
        except UnknownShop as unknown:
            raise _fail(str(unknown), 2) from None
        if outcome != "transitioned":
            raise _fail(why or f"disconnect was {outcome}", 2)
        out.print(f"{key}: {label}; outbound work is held until it is authorized again")
