"""The merchant's commands: `channelsync products` (list, set), `orders` and `shops`.

Lists show the charts' labels, take a label or an id (any case) in their
filters and exit 2 naming the valid values for any other; `--json` prints the
rows with the field names docs/merchant-cli.md lists.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from engine.cli.common import open_existing
from engine.cli.in_use import refused_when_in_use
from engine.settings import EngineSettings

# The charts' views are imported by the functions that use them: this module
# is imported to build the command line (engine/cli/main.py), which must not
# import the engine's charts.

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

MAX_CERTIFICATIONS = 10  # TikTok accepts at most 10 certifications per product
UNITS = {
    "cm": "CENTIMETER",
    "centimeter": "CENTIMETER",
    "centimeters": "CENTIMETER",
    "in": "INCH",
    "inch": "INCH",
    "inches": "INCH",
}
_DIMENSIONS = re.compile(
    r"^\s*(?P<l>[^x\u00d7*\s]+)\s*[x\u00d7*]\s*(?P<w>[^x\u00d7*\s]+)\s*[x\u00d7*]\s*(?P<h>[^x\u00d7*\s]+?)"
    r"\s*(?P<unit>[a-z]+)?\s*$",
    re.IGNORECASE,
)
_DIGITS = re.compile(r"^[0-9]+$")
CLEAR_NAMES = ("category", "dimensions", "size-chart", "certifications")
CLEARABLE = {
    "category": "category_id",
    "dimensions": "package_dimensions",
    "size-chart": "size_chart",
    "certifications": "certifications",
}


# ------------------------------------------------------------------ what the merchant typed


class AttributeInputError(ValueError):
    """A `products set` value that cannot be sent; ``option`` names the flag."""

    def __init__(self, option: str, message: str) -> None:
        self.option = option
        super().__init__(message)


def parse_dimensions(text: str) -> dict[str, Any]:
    """``10x8x4cm`` / ``10 x 8 x 4 in`` -> TikTok's package_dimensions; cm when no unit."""
    match = _DIMENSIONS.match(text)
    if not match:
        raise AttributeInputError(
            "--dimensions", f"{text!r} is not LENGTHxWIDTHxHEIGHT, e.g. 30x20x5cm or 12x8x2in"
        )
    unit_text = (match["unit"] or "cm").lower()
    unit = UNITS.get(unit_text)
    if unit is None:
        raise AttributeInputError(
            "--dimensions", f"unknown unit {match['unit']!r}: use cm or in (e.g. 30x20x5cm)"
        )
    sizes: dict[str, Any] = {}
    for name, raw in (("length", match["l"]), ("width", match["w"]), ("height", match["h"])):
        if not _DIGITS.match(raw):
            raise AttributeInputError(
                "--dimensions", f"the {name} {raw!r} is not a whole number (TikTok takes integers)"
            )
        value = int(raw)
        if value <= 0:
            raise AttributeInputError("--dimensions", f"the {name} must be greater than 0")
        sizes[name] = value
    return {**sizes, "unit": unit}


def _tiktok_id(option: str, value: str, what: str) -> str:
    value = value.strip()
    if not _DIGITS.match(value):
        raise AttributeInputError(
            option, f"{value!r} is not a TikTok {what} id (digits only, e.g. 600001)"
        )
    return value


def parse_attributes(
    *,
    category: str | None = None,
    dimensions: str | None = None,
    size_chart: str | None = None,
    certifications: list[str] | None = None,
    clear: list[str] | None = None,
) -> dict[str, Any]:
    """The keyword arguments of `set_product_attributes` for what was given
    (None for an attribute to clear); `AttributeInputError` for the first value
    that cannot be sent."""
    attributes: dict[str, Any] = {}
    if category is not None:
        attributes["category_id"] = _tiktok_id("--category", category, "category")
    if dimensions is not None:
        attributes["package_dimensions"] = parse_dimensions(dimensions)
    if size_chart is not None:
        uri = size_chart.strip()
        if not uri or any(c.isspace() for c in uri):
            raise AttributeInputError(
                "--size-chart", f"{size_chart!r} is not an image URI (no spaces, not empty)"
            )
        attributes["size_chart"] = {"image_uri": uri}
    if certifications:
        ids = [_tiktok_id("--certification", c, "certification") for c in certifications]
        if len(set(ids)) != len(ids):
            raise AttributeInputError("--certification", "the same certification is given twice")
        if len(ids) > MAX_CERTIFICATIONS:
            raise AttributeInputError(
                "--certification",
                f"{len(ids)} certifications given; TikTok takes at most {MAX_CERTIFICATIONS}",
            )
        attributes["certifications"] = [{"id": i, "images": []} for i in ids]
    for name in clear or []:
        keyword = CLEARABLE.get(name.strip().lower())
        if keyword is None:
            raise AttributeInputError(
                "--clear", f"{name!r} is not an attribute; use one of {', '.join(CLEAR_NAMES)}"
            )
        if attributes.get(keyword) is not None:
            raise AttributeInputError("--clear", f"{name} is both set and cleared")
        attributes[keyword] = None
    if not attributes:
        raise AttributeInputError(
            "--category",
            "nothing to set: give --category, --dimensions, --size-chart, --certification "
            "or --clear",
        )
    return attributes


def _filter(choices_name: str) -> Callable[[str | None], str | None]:
    """An option callback: a label or an id (any case) -> the id; exit 2 otherwise.
    ``choices_name``: the function of `statecharts.views` that lists them."""

    def resolve(value: str | None) -> str | None:
        if value is None:
            return None
        from statecharts import views
        from statecharts.views import Choices, UnknownFilterValue

        choices: Callable[[], Choices] = getattr(views, choices_name)
        try:
            return choices().resolve(value)
        except UnknownFilterValue as error:
            raise typer.BadParameter(str(error)) from None

    return resolve


# ------------------------------------------------------------------ tables


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


def _add_row(table: Table, *cells: str) -> None:
    """Cells are plain text: a title or a reason with [brackets] is shown as
    written, never read as rich markup."""
    table.add_row(*(Text(cell) for cell in cells))


def product_table(rows: list[dict[str, Any]], title: str = "Product Sync List") -> Table:
    """The Product Sync List from `ProductRow.as_dict()` rows."""
    table = Table(title=title, title_justify="left")
    table.add_column("Product", no_wrap=True)
    for column in ("Title", "Status", "Failure reason", "Last sync (UTC)", "TikTok product"):
        table.add_column(column)
    for row in rows:
        _add_row(
            table,
            row["product_id"],
            row["title"],
            row["status_label"],
            row["reason"],
            _cell(row["last_sync_at"]),
            _cell(row["tiktok_product_id"]),
        )
    return table


def shoplazza_cell(row: dict[str, Any]) -> str:
    from statecharts.views import humanize

    parts = [
        (name, row[key])
        for name, key in (
            ("Order", "shoplazza_status"),
            ("Payment", "shoplazza_financial_status"),
            ("Fulfillment", "shoplazza_fulfillment_status"),
        )
        if row.get(key)
    ]
    return "\n".join(f"{name}: {humanize(value)}" for name, value in parts)


def returns_cell(row: dict[str, Any]) -> str:
    from statecharts.views import humanize

    return "\n".join(
        f"{humanize(item['return_type'] or 'return')}: {humanize(item['return_status'] or '')}"
        for item in row["returns"]
    )


def _with_reason(label: str, reason: str | None) -> str:
    return f"{label}: {reason}" if reason else label


def order_table(rows: list[dict[str, Any]], title: str = "Orders") -> Table:
    """The order list from `OrderRow.as_dict()` rows."""
    table = Table(title=title, title_justify="left")
    table.add_column("TikTok order", no_wrap=True)
    for column in (
        "Created (UTC)",
        "Channel",
        "Status",
        "Sync",
        "Shoplazza order",
        "Shoplazza status",
        "Returns/refunds",
        "Shipping info to TikTok",
    ):
        table.add_column(column)
    for row in rows:
        _add_row(
            table,
            row["order_id"],
            _cell(row["shoplazza_created_at"] or row["tiktok_create_time"]),
            row["sales_channel"],
            row["status_label"],
            _with_reason(row["sync_status_label"], row["sync_reason"]),
            _cell(row["shoplazza_order_id"]),
            shoplazza_cell(row),
            returns_cell(row),
            _with_reason(row["fulfillment_status_label"], row["fulfillment_reason"]),
        )
    return table


def shop_table(rows: list[dict[str, Any]], title: str = "TikTok Shop connection") -> Table:
    """The connection of each store from `ShopRow.as_dict()` rows."""
    table = Table(title=title, title_justify="left")
    table.add_column("Store", no_wrap=True)
    for column in (
        "Status",
        "Reason",
        "TikTok shop",
        "Fulfillment",
        "Carriers mapped",
        "Authorization expires (UTC)",
    ):
        table.add_column(column)
    for row in rows:
        carriers = "\n".join(
            f"{c['tracking_company_code']} -> "
            f"{c['shipping_provider_name'] or c['shipping_provider_id']}"
            for c in row["carrier_mapping"]
        )
        _add_row(
            table,
            _cell(row["store_domain"] or row["key"]),
            row["status_label"],
            _cell(row["reason"]),
            _cell(row["tiktok_shop_name"] or row["tiktok_shop_id"]),
            _cell(row["fulfillment_model"]),
            carriers,
            _cell(row["authorization_expires_at"]),
        )
    return table


def _print_rows(rows: list[dict[str, Any]], as_json: bool, table: Callable[..., Table]) -> None:
    if as_json:
        typer.echo(json.dumps(rows, indent=2, ensure_ascii=False))
    else:
        out.print(table(rows), highlight=False)


# ------------------------------------------------------------------ commands

DbOption = Annotated[Path, typer.Option("--db", help="The SQLite database file.")]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print JSON (fields in docs/merchant-cli.md).")
]
ProductStatusOption = Annotated[
    str | None,
    typer.Option(
        "--status",
        help="A status label or id, any case: 'Pending Sync', 'In Review', approved, ...",
        callback=_filter("listing_statuses"),
    ),
]


def register(app: typer.Typer) -> None:
    products_app = typer.Typer(
        help="The Product Sync List, and the TikTok attributes a merchant supplies."
    )
    products_app.callback(invoke_without_command=True)(products)
    products_app.command("list")(products_list)
    products_app.command("set")(products_set)
    app.add_typer(products_app, name="products")
    app.command()(orders)
    app.command()(shops)


def _list_products(db: Path, status: str | None, as_json: bool) -> None:
    from statecharts.views import product_sync_list

    async def run() -> list[dict[str, Any]]:
        store = await open_existing(db)
        try:
            return [r.as_dict() for r in await product_sync_list(store, status)]
        finally:
            await store.close()

    _print_rows(asyncio.run(run()), as_json, product_table)


def products(
    ctx: typer.Context,
    db: Annotated[Path | None, typer.Option("--db", help="The SQLite database file.")] = None,
    status: ProductStatusOption = None,
    as_json: JsonOption = False,
) -> None:
    """The Product Sync List (same as `products list`); `products set` supplies
    a product's TikTok-only attributes."""
    if ctx.invoked_subcommand is not None:
        return
    if db is None:
        raise typer.BadParameter("the database is needed: --db PATH", param_hint="'--db'")
    _list_products(db, status, as_json)


def products_list(
    db: DbOption, status: ProductStatusOption = None, as_json: JsonOption = False
) -> None:
    """The Product Sync List: each product's status, failure reason and last sync."""
    _list_products(db, status, as_json)


def products_set(
    key: Annotated[
        str,
        typer.Argument(
            metavar="KEY", help="The product id, or its listing key listing:<store>:<id>."
        ),
    ],
    db: DbOption,
    category: Annotated[
        str | None, typer.Option("--category", help="A leaf TikTok category id.")
    ] = None,
    dimensions: Annotated[
        str | None,
        typer.Option(
            "--dimensions",
            help="Package LxWxH in cm or in, e.g. 30x20x5cm (whole numbers; cm by default).",
        ),
    ] = None,
    size_chart: Annotated[
        str | None, typer.Option("--size-chart", help="The size chart's image URI.")
    ] = None,
    certification: Annotated[
        list[str] | None,
        typer.Option("--certification", help="A TikTok certification id (repeatable)."),
    ] = None,
    clear: Annotated[
        list[str] | None,
        typer.Option(
            "--clear",
            help="Remove an attribute: category, dimensions, size-chart or certifications.",
        ),
    ] = None,
) -> None:
    """Supply a product's TikTok-only attributes; Shoplazza edits never erase them."""
    try:
        attributes = parse_attributes(
            category=category,
            dimensions=dimensions,
            size_chart=size_chart,
            certifications=certification,
            clear=clear,
        )
    except AttributeInputError as error:
        raise typer.BadParameter(str(error), param_hint=f"'{error.option}'") from None
    if not db.exists():
        err.print(f"[red]error:[/red] no database at {escape(str(db))}", highlight=False)
        raise typer.Exit(1)
    with refused_when_in_use():
        receipt, label = asyncio.run(_set_attributes(db, key, attributes))
    if receipt.outcome in ("error", "ignored"):
        err.print(
            f"[red]error:[/red] {escape(str(receipt.entity))}: not saved "
            f"({escape(str(receipt.reason))})",
            highlight=False,
        )
        raise typer.Exit(1)
    out.print(Text(f"{receipt.entity}: attributes saved; status {label}"))


def orders(
    db: DbOption,
    channel: Annotated[
        str | None,
        typer.Option(
            "--channel",
            help="Sales channel, any case: TikTok Shop.",
            callback=_filter("sales_channels"),
        ),
    ] = None,
    status: Annotated[
        str | None,
        typer.Option(
            "--status",
            help="An order status label or id, any case: 'On Hold', in_transit, ...",
            callback=_filter("order_statuses"),
        ),
    ] = None,
    sync_status: Annotated[
        str | None,
        typer.Option(
            "--sync-status",
            help="Not synced, Syncing, Synced or Failed (label or id, any case).",
            callback=_filter("sync_statuses"),
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """The order list: TikTok status, Shoplazza copy and status, returns and
    refunds, and the shipping info sent to TikTok."""
    from statecharts.views import order_list

    async def run() -> list[dict[str, Any]]:
        store = await open_existing(db)
        try:
            rows = await order_list(store, channel=channel, status=status, sync_status=sync_status)
        finally:
            await store.close()
        return [r.as_dict() for r in rows]

    title = "Orders" + (f" ({channel})" if channel else "")
    _print_rows(asyncio.run(run()), as_json, lambda rows: order_table(rows, title))


def shops(
    db: DbOption,
    status: Annotated[
        str | None,
        typer.Option(
            "--status",
            help="A connection status label or id, any case: Active, 'Authorization inactive', ...",
            callback=_filter("connection_statuses"),
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """The TikTok Shop connection of each store: status and why, fulfillment
    model, carriers mapped, when the authorization expires."""
    from statecharts.views import shop_list

    async def run() -> list[dict[str, Any]]:
        store = await open_existing(db)
        try:
            return [r.as_dict() for r in await shop_list(store, status)]
        finally:
            await store.close()

    _print_rows(asyncio.run(run()), as_json, shop_table)


async def _set_attributes(db: Path, key: str, attributes: dict[str, Any]) -> tuple[Any, str]:
    """Publish the attributes through the library function; (receipt, status label)."""
    from engine.cli.common import load_charts
    from engine.cli.in_use import MERCHANT_WAIT
    from engine.runtime import Engine
    from statecharts.chart_states import top_state
    from statecharts.merchant import set_product_attributes
    from statecharts.views import listing_statuses

    engine = await Engine.open(
        db,
        charts=load_charts(),
        settings=EngineSettings(run_timers=False, run_outbox=False, lock_wait=MERCHANT_WAIT),
    )
    try:
        listing_key = await _listing_key(engine, key)
        try:
            receipt = await set_product_attributes(engine, listing_key, **attributes)
        except ValueError as error:  # the library's own checks: nothing was recorded
            raise typer.BadParameter(str(error)) from None
        entity = await engine.entity(listing_key)
    finally:
        await engine.stop()
    return receipt, listing_statuses().label(top_state(entity.state) if entity else None)


async def _listing_key(engine: Any, key: str) -> str:
    """A listing key as given, or the one listing of a product id; exit 2 otherwise."""
    if key.startswith("listing:"):
        return key
    candidates = await engine.store.entity_keys(
        "product_listing", prefix="listing:", suffix=":" + key
    )
    keys = [k for k in candidates if k.rsplit(":", 1)[-1] == key]
    if len(keys) == 1:
        return keys[0]
    if not keys:
        raise typer.BadParameter(
            f"no product {key!r} in the Product Sync List; add it to sync first", param_hint="KEY"
        )
    raise typer.BadParameter(
        f"product {key!r} is in more than one store: give one of {', '.join(keys)}",
        param_hint="KEY",
    )
