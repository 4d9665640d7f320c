"""`channelsync products` and `channelsync orders`: the merchant's two lists."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from statecharts.views import order_list, product_sync_list

out = Console()


def register(app: typer.Typer) -> None:
    from engine.cli.main import open_existing

    @app.command()
    def products(
        db: Annotated[Path, typer.Option("--db", help="The SQLite database file.")],
        status: Annotated[
            str | None,
            typer.Option(
                "--status", help="pending_sync, in_review, approved, rejected, deactivated"
            ),
        ] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    ) -> None:
        """The Product Sync List: status and failure reasons of each synced product."""

        async def run() -> None:
            store = await open_existing(db)
            try:
                rows = await product_sync_list(store, status)
            finally:
                await store.close()
            if as_json:
                typer.echo(json.dumps([r.as_dict() for r in rows], indent=2))
                return
            table = Table(title="Product Sync List")
            for column in ("Product", "Title", "Status", "Failure reason"):
                table.add_column(column)
            for row in rows:
                reasons = "; ".join(
                    f"{r.get('position') or 'product'}: {', '.join(r.get('reasons', []))}"
                    for r in row.failure_reasons
                )
                table.add_row(row.product_id, row.title, row.status_label, reasons)
            out.print(table)

        asyncio.run(run())

    @app.command()
    def orders(
        db: Annotated[Path, typer.Option("--db", help="The SQLite database file.")],
        channel: Annotated[str | None, typer.Option("--channel", help='e.g. "TikTok Shop"')] = None,
        status: Annotated[
            str | None, typer.Option("--status", help="TikTok status, e.g. on_hold")
        ] = None,
        sync_status: Annotated[
            str | None, typer.Option("--sync-status", help="not_synced, syncing, synced or failed")
        ] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    ) -> None:
        """The order list, filtered by sales channel, TikTok status or sync status."""

        async def run() -> None:
            store = await open_existing(db)
            try:
                rows = await order_list(
                    store, channel=channel, status=status, sync_status=sync_status
                )
            finally:
                await store.close()
            if as_json:
                typer.echo(json.dumps([r.as_dict() for r in rows], indent=2))
                return
            table = Table(title="Orders" + (f" ({channel})" if channel else ""))
            for column in (
                "TikTok order",
                "Channel",
                "Status",
                "Sync",
                "Shoplazza order",
                "Fulfillment",
            ):
                table.add_column(column)
            for row in rows:
                sync = row.sync_status + (f": {row.sync_reason}" if row.sync_reason else "")
                fulfillment = (row.fulfillment_status or "") + (
                    f": {row.fulfillment_reason}" if row.fulfillment_reason else ""
                )
                table.add_row(
                    row.order_id,
                    row.sales_channel,
                    row.status,
                    sync,
                    row.shoplazza_order_id or "",
                    fulfillment,
                )
            out.print(table)

        asyncio.run(run())
