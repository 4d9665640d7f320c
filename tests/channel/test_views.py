"""What the merchant reads: the Product Sync List, the order list and the shops (issue 12, part 3).

Built through the engine and the channel harness on a real SQLite file, read
back through `channelsync products` / `orders` / `shops` as a merchant would.
"""

from __future__ import annotations

import io
import json
import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from statecharts.cli import (
    AttributeInputError,
    _listing_key,
    order_table,
    parse_attributes,
    parse_dimensions,
    product_table,
    shop_table,
)
from statecharts.views import (
    UnknownFilterValue,
    chart_state_labels,
    iso_time,
    listing_statuses,
    order_statuses,
    product_row,
    returns_of,
)
from tests.channel.harness import SHOP, listing, product
from tests.conftest import invoke_cli

USPS = "7117858858072016686"
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
START = "2023-11-14T22:13:20Z"  # the FakeClock's start, 1_700_000_000
DOCS = Path(__file__).resolve().parents[2] / "docs" / "merchant-cli.md"

PRODUCT_FIELDS = {
    "key",
    "product_id",
    "title",
    "status",
    "status_label",
    "reason",
    "failure_reasons",
    "edit_failure_reasons",
    "deactivated_reason",
    "last_sync_at",
    "tiktok_product_id",
    "category_id",
}
SHOP_FIELDS = {
    "key",
    "store_domain",
    "status",
    "status_label",
    "reason",
    "account_type",
    "tiktok_shop_id",
    "tiktok_shop_name",
    "fulfillment_model",
    "carrier_mapping",
    "terms_accepted_at",
    "authorized_at",
    "authorization_expires_at",
    "inactive_since",
}
ORDER_FIELDS = {
    "key",
    "order_id",
    "sales_channel",
    "status",
    "status_label",
    "tiktok_create_time",
    "tiktok_update_time",
    "sync_status",
    "sync_status_label",
    "sync_reason",
    "shoplazza_order_id",
    "shoplazza_created_at",
    "shoplazza_status",
    "shoplazza_financial_status",
    "shoplazza_fulfillment_status",
    "returns",
    "fulfillment_status",
    "fulfillment_status_label",
    "fulfillment_reason",
    "buyer_address",
}


@pytest.fixture
async def shop(connected):
    """p1 approved, p2 in review, heavy rejected (no weight), gone deleted in
    Shoplazza; order 8001 synced and paid, 8002 on hold."""
    channel = connected
    await channel.send(
        "logistics.map_carrier",
        SHOP,
        {"tracking_company_code": "usps", "shipping_provider_id": USPS},
    )
    await channel.add_products(
        product("p1"), product("p2"), product("heavy", weight=None), product("gone")
    )
    await channel.approve("p1")
    await channel.send("listing.product_removed", listing("gone"), {"reason": "deleted"})
    p1 = await channel.tiktok_product_id("p1")
    channel.tiktok_order("8001", product_ids=(p1,))
    await channel.order_status("8001", "AWAITING_SHIPMENT", 1_700_000_100)
    channel.tiktok_order("8002", product_ids=(p1,))
    await channel.order_status("8002", "ON_HOLD", 1_700_000_200, is_on_hold_order=True)
    return channel


async def listed(*args: str) -> Any:
    result = await invoke_cli(*args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def rendered(table: Any) -> str:
    console = Console(width=250, record=True, file=io.StringIO())
    console.print(table)
    return console.export_text()


def flat(text: str) -> str:
    """CLI error text with the box drawing and line wrapping taken out."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", text).split())


# ------------------------------------------------------------------ labels and filters


async def test_prod2_product_list_shows_the_charts_labels_never_raw_ids(shop, db_path):
    """PROD-2: Pending Sync / In Review / Approved / Rejected as the merchant reads them."""
    rows = await listed("products", "--db", str(db_path), "--json")
    shown = {r["product_id"]: r["status_label"] for r in rows}
    assert shown == {
        "p1": "Approved",
        "p2": "In Review",
        "heavy": "Rejected",
        "gone": "Deactivated",
    }
    text = rendered(product_table(rows))
    assert "In Review" in text and "in_review" not in text


async def test_titles_and_reasons_show_as_written_even_with_brackets(shop, db_path):
    """A Shoplazza title like "Hat [XL]" is text, not terminal markup."""
    await shop.add_products(product("br", title="Hat [XL] [bold]", weight=None))
    rows = await listed("products", "--db", str(db_path), "--status", "rejected", "--json")
    [row] = [r for r in rows if r["product_id"] == "br"]
    assert "Hat [XL] [bold]" in rendered(product_table([row]))


async def test_prod2_status_filter_takes_a_label_or_an_id_in_any_case(shop, db_path):
    """PROD-2: `--status "in review"`, `IN_REVIEW` and `in_review` are one filter."""
    for value in ("In Review", "in review", "IN_REVIEW", "in_review", "In-Review"):
        rows = await listed("products", "--db", str(db_path), "--status", value, "--json")
        assert [r["product_id"] for r in rows] == ["p2"], value
    rejected = await listed(
        "products", "list", "--db", str(db_path), "--status", "REJECTED", "--json"
    )
    assert [r["product_id"] for r in rejected] == ["heavy"]
    for value in ("On Hold", "on hold", "ON_HOLD"):
        rows = await listed("orders", "--db", str(db_path), "--status", value, "--json")
        assert [r["order_id"] for r in rows] == ["8002"], value
    rows = await listed("orders", "--db", str(db_path), "--sync-status", "SYNCED", "--json")
    assert {r["order_id"] for r in rows} == {"8001", "8002"}
    rows = await listed("orders", "--db", str(db_path), "--channel", "tiktok shop", "--json")
    assert {r["sales_channel"] for r in rows} == {"TikTok Shop"}


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (("products", "--status", "Rejectd"), ["Pending Sync (pending_sync)", "Rejected"]),
        (("products", "list", "--status", "live"), ["In Review (in_review)", "Deactivated"]),
        (("orders", "--status", "Shipped"), ["On Hold (on_hold)", "In Transit (in_transit)"]),
        (("orders", "--sync-status", "done"), ["Not synced (not_synced)", "Failed (failed)"]),
        (("orders", "--channel", "Online Store"), ["TikTok Shop"]),
        (
            ("shops", "--status", "connected"),
            [
                "Active (authorized)",
                "Active, authorization expiring (authorized.expiring)",
                "Authorization inactive",
            ],
        ),
    ],
)
async def test_an_unknown_filter_value_exits_2_naming_the_valid_values(shop, db_path, args, named):
    """Today `--status Rejected`-like typos print an empty table and exit 0."""
    command, *options = args
    result = await invoke_cli(command, "--db", str(db_path), *options)
    assert result.exit_code == 2, result.output
    message = flat(result.output)
    for name in named:
        assert name in message, message
    assert "┏" not in result.output, "no table is printed"


async def test_products_and_products_list_both_list(shop, db_path):
    """`channelsync products` is a group whose bare form lists."""
    bare = await listed("products", "--db", str(db_path), "--json")
    explicit = await listed("products", "list", "--db", str(db_path), "--json")
    assert bare == explicit and len(bare) == 4
    missing = await invoke_cli("products")
    assert missing.exit_code == 2 and "--db" in flat(missing.output)


# ------------------------------------------------------------------ JSON and times


async def test_every_list_has_json_with_the_documented_fields(shop, db_path):
    """Stable field names, each one written in docs/merchant-cli.md."""
    products = await listed("products", "--db", str(db_path), "--json")
    products_list = await listed("products", "list", "--db", str(db_path), "--json")
    orders = await listed("orders", "--db", str(db_path), "--json")
    shops = await listed("shops", "--db", str(db_path), "--json")
    assert products and orders and shops
    assert all(set(r) == PRODUCT_FIELDS for r in products + products_list)
    assert all(set(r) == ORDER_FIELDS for r in orders)
    assert all(set(r) == SHOP_FIELDS for r in shops)
    docs = DOCS.read_text(encoding="utf-8")
    for name in PRODUCT_FIELDS | ORDER_FIELDS | SHOP_FIELDS:
        assert f"`{name}`" in docs, f"{name} is not documented"


async def test_times_are_iso_8601_utc(shop, db_path):
    """ORD-2: Shoplazza's creation time and TikTok's own, both readable, both UTC."""
    products = {
        r["product_id"]: r for r in await listed("products", "--db", str(db_path), "--json")
    }
    assert products["p1"]["last_sync_at"] == START
    orders = {r["order_id"]: r for r in await listed("orders", "--db", str(db_path), "--json")}
    order = orders["8001"]
    assert order["tiktok_create_time"] == "2023-11-14T19:26:40Z"  # 1_699_990_000
    assert order["tiktok_update_time"] == "2023-11-14T22:15:00Z"  # 1_700_000_100
    assert order["shoplazza_created_at"] == START
    for row in [*products.values(), *orders.values()]:
        for name, value in row.items():
            if name.endswith(("_at", "_time")) and value is not None:
                assert ISO_UTC.match(value), (name, value)


# ------------------------------------------------------------------ reasons


async def test_prod8_a_deactivated_row_shows_why(shop, db_path):
    """PROD-8: deleted or unpublished in Shoplazza is the reason the row shows."""
    await shop.send(
        "listing.product_updated", listing("p1"), {"product": product("p1", published=False)}
    )
    # Rejected first, then deleted: the row says deleted, not the old rejection.
    await shop.send("listing.product_removed", listing("heavy"), {"reason": "deleted"})
    rows = {r["product_id"]: r for r in await listed("products", "--db", str(db_path), "--json")}
    assert rows["gone"]["deactivated_reason"] == "deleted in Shoplazza"
    assert rows["p1"]["status_label"] == "Deactivated"
    assert rows["p1"]["reason"] == "unpublished in Shoplazza"
    assert rows["heavy"]["reason"] == "deleted in Shoplazza"
    text = rendered(product_table(list(rows.values())))
    assert "unpublished in Shoplazza" in text and "deleted in Shoplazza" in text


async def test_prod5_failure_reasons_show_as_stored_without_field_paths(shop, db_path):
    """PROD-5: the reason column shows the stored sentences, not `package_weight:`."""
    [row] = await listed("products", "--db", str(db_path), "--status", "Rejected", "--json")
    stored = [text for item in row["failure_reasons"] for text in item["reasons"]]
    assert stored and row["reason"].startswith(stored[0])
    text = rendered(product_table([row]))
    assert stored[0] in text and "package_weight:" not in text


def reasons(*sentences: str, source: str = "tiktok") -> list[dict[str, Any]]:
    return [{"source": source, "position": "", "reasons": list(sentences), "suggestions": []}]


def test_prod12_a_held_edit_is_the_reason_of_a_product_that_keeps_selling():
    """PROD-12: Approved on TikTok, with the edit's failure shown as its reason."""
    row = product_row(
        listing("p1"),
        "approved",
        {"edit_failure": reasons("The weight of SKU-1 is missing.", source="local")},
        listing_statuses(),
    )
    assert row.status_label == "Approved"
    assert row.reason == "The weight of SKU-1 is missing."
    assert row.edit_failure_reasons and row.failure_reasons == []


@pytest.mark.parametrize(
    "state", ["seller_deactivated", "platform_deactivated", "frozen", "deleted_on_tiktok"]
)
def test_prod11_a_state_tiktok_set_shows_its_label_and_its_own_reason(state):
    """PROD-11: TikTok's deactivation, freeze and deletion each show as what they
    are, with TikTok's reason, never a stale Shoplazza deactivation reason."""
    row = product_row(
        listing("p1"),
        state,
        {
            "failure_reasons": reasons("TikTok Shop froze the product."),
            "deactivated_because": "unpublished in Shoplazza",  # from an earlier round
        },
        listing_statuses(),
    )
    assert row.reason == "TikTok Shop froze the product."
    assert row.deactivated_reason is None
    assert row.status_label == chart_state_labels("product_listing").get(state, row.status_label)
    assert row.status_label and "_" not in row.status_label


def test_ord6_a_return_shows_its_latest_status_even_when_updates_arrive_out_of_order():
    rows = returns_of(
        {
            "returns": [
                {
                    "return_id": "r1",
                    "return_type": "REFUND",
                    "return_status": "A",
                    "update_time": 5,
                },
                {
                    "return_id": "r2",
                    "return_type": "RETURN",
                    "return_status": "X",
                    "update_time": 6,
                },
                {
                    "return_id": "r1",
                    "return_type": "REFUND",
                    "return_status": "C",
                    "update_time": 9,
                },
                {
                    "return_id": "r1",
                    "return_type": "REFUND",
                    "return_status": "B",
                    "update_time": 7,
                },
            ]
        }
    )
    assert [(r["return_id"], r["return_status"]) for r in rows] == [("r1", "C"), ("r2", "X")]


# ------------------------------------------------------------------ the Shoplazza side


async def test_ord6_ord7_the_order_list_shows_the_shoplazza_status_and_refunds(shop, db_path):
    """ORD-6/ORD-7: Shoplazza's payment, fulfillment and order status, and
    TikTok's returns and refunds, are visible in the order list."""
    orders = {r["order_id"]: r for r in await listed("orders", "--db", str(db_path), "--json")}
    assert orders["8001"]["shoplazza_financial_status"] == "paid"

    await shop.send("order.shoplazza_changed", "order:8001", {"financial_status": "refunded"})
    await shop.send(
        "order.tiktok_return_changed",
        "order:8001",
        {
            "return_id": "r1",
            "return_type": "REFUND",
            "return_status": "RETURN_OR_REFUND_REQUEST_PENDING",
        },
    )
    await shop.send(
        "order.tiktok_return_changed",
        "order:8001",
        {
            "return_id": "r1",
            "return_type": "REFUND",
            "return_status": "RETURN_OR_REFUND_REQUEST_COMPLETE",
            "update_time": 1_700_000_900,
        },
    )
    await shop.order_status("8002", "CANCELLED", 1_700_000_300)

    orders = {r["order_id"]: r for r in await listed("orders", "--db", str(db_path), "--json")}
    refunded, cancelled = orders["8001"], orders["8002"]
    assert refunded["shoplazza_financial_status"] == "refunded"
    assert refunded["returns"] == [
        {
            "return_id": "r1",
            "return_type": "REFUND",
            "return_status": "RETURN_OR_REFUND_REQUEST_COMPLETE",
            "cancel_status": None,
            "updated_at": "2023-11-14T22:28:20Z",
        }
    ], "one entry per return, its latest state"
    assert cancelled["status_label"] == "Cancelled"
    assert cancelled["shoplazza_status"] == "cancelled"
    text = rendered(order_table(list(orders.values())))
    assert "Payment: Refunded" in text
    assert "Refund: Return or refund request complete" in text
    assert "Order: Cancelled" in text


async def test_ord5_the_order_list_never_shows_the_buyers_address(shop, db_path):
    """ORD-5: the address kept for Shoplazza is not part of the list."""
    assert (await shop.data("order:8001")).get("recipient_address"), "stored for Shoplazza"
    result = await invoke_cli("orders", "--db", str(db_path), "--json")
    assert "Ada Lovelace" not in result.stdout and "Main St" not in result.stdout


# ------------------------------------------------------------------ the connection


async def test_conn4_the_shops_list_shows_the_connection_and_why_it_is_inactive(shop, db_path):
    """CONN-4, LOGI-2: status label, carriers mapped, and the reason an
    authorization ended, in the merchant's words."""
    [row] = await listed("shops", "--db", str(db_path), "--json")
    assert row["status_label"] == "Active" and row["reason"] is None
    assert row["fulfillment_model"] == "FBS"
    assert row["carrier_mapping"] == [
        {
            "tracking_company_code": "usps",
            "shipping_provider_id": USPS,
            "shipping_provider_name": "USPS",
        }
    ]
    assert row["authorized_at"] == START
    assert row["authorization_expires_at"] == "2024-01-13T22:13:20Z"  # refresh token: +60 days

    await shop.send("connection.deauthorized", SHOP)
    [row] = await listed(
        "shops", "--db", str(db_path), "--status", "AUTHORIZATION inactive", "--json"
    )
    assert row["status_label"] == "Authorization inactive"
    assert row["reason"] == "the seller deauthorized the app on TikTok Shop"
    assert row["inactive_since"] == START
    text = rendered(shop_table([row]))
    assert "Authorization inactive" in text and "usps -> USPS" in text
    assert await listed("shops", "--db", str(db_path), "--status", "active", "--json") == []
    await shop.authorize()
    [row] = await listed("shops", "--db", str(db_path), "--json")
    assert row["status_label"] == "Active"
    assert row["reason"] is None and row["inactive_since"] is None, "nothing stale"


# ------------------------------------------------------------------ properties


@given(data=st.data())
def test_every_label_and_id_resolves_in_any_case(data):
    """For every state of both charts (the order's lifecycle region), any casing
    of its label or id filters to it."""
    chart = data.draw(st.sampled_from(["product_listing", "order"]))
    choices = listing_statuses() if chart == "product_listing" else order_statuses()
    state, label = data.draw(st.sampled_from(sorted(choices.labels.items())))
    text = data.draw(st.sampled_from([state, label]))
    flips = data.draw(st.lists(st.booleans(), min_size=len(text), max_size=len(text)))
    cased = "".join(c.upper() if f else c.lower() for c, f in zip(text, flips, strict=True))
    assert choices.resolve(f" {cased} ") == state


@given(st.text(max_size=20))
def test_anything_else_is_refused_naming_every_state(text):
    choices = order_statuses()
    known = {
        " ".join(v.replace("_", " ").replace("-", " ").split()).casefold()
        for v in [*choices.labels, *choices.labels.values()]
    }
    if " ".join(text.replace("_", " ").replace("-", " ").split()).casefold() in known:
        return
    with pytest.raises(UnknownFilterValue) as refused:
        choices.resolve(text)
    for label in choices.labels.values():
        assert label in str(refused.value)


@given(st.integers(min_value=0, max_value=2**33))
def test_iso_time_is_the_same_instant_in_utc(seconds):
    shown = iso_time(seconds)
    assert ISO_UTC.match(shown)
    assert datetime.fromisoformat(shown.replace("Z", "+00:00")).timestamp() == seconds


@given(
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)).map(
        lambda d: d.replace(microsecond=0)
    ),
    st.integers(min_value=-12 * 60, max_value=14 * 60),
)
def test_iso_time_converts_a_shoplazza_offset_to_utc(moment, offset_minutes):
    local = moment.replace(tzinfo=timezone(timedelta(minutes=offset_minutes)))
    shown = iso_time(local.isoformat())
    assert ISO_UTC.match(shown)
    assert datetime.fromisoformat(shown.replace("Z", "+00:00")) == local.astimezone(UTC)


# ------------------------------------------------------------------ products set: the input


@given(
    st.tuples(*[st.integers(min_value=1, max_value=10**6)] * 3),
    st.sampled_from(["", "cm", "CM", " cm", "in", "In", " inches", "centimeters"]),
    st.sampled_from(["x", "X", " x ", "\u00d7", "*"]),
)
def test_prod10_dimensions_parse_in_every_spelling(sizes, unit, separator):
    """PROD-10: LxWxH with cm or in (cm when none) becomes TikTok's package_dimensions."""
    text = separator.join(str(n) for n in sizes) + unit
    parsed = parse_dimensions(text)
    assert (parsed["length"], parsed["width"], parsed["height"]) == sizes
    assert parsed["unit"] == ("INCH" if unit.strip().lower().startswith("in") else "CENTIMETER")


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("10x8", "LENGTHxWIDTHxHEIGHT"),
        ("10.5x8x4cm", "whole number"),
        ("0x8x4", "greater than 0"),
        ("10x8x4mm", "unknown unit"),
        ("-1x8x4", "whole number"),
        ("", "LENGTHxWIDTHxHEIGHT"),
    ],
)
def test_prod10_bad_dimensions_are_refused_clearly(text, says):
    with pytest.raises(AttributeInputError) as refused:
        parse_dimensions(text)
    assert refused.value.option == "--dimensions" and says in str(refused.value)


def test_prod10_attributes_become_the_library_call_arguments():
    """PROD-10: the keyword arguments of statecharts.merchant.set_product_attributes."""
    assert parse_attributes(
        category="600001",
        dimensions="30x20x5in",
        size_chart="tos-maliva-i-o3syd03w52-us/size",
        certifications=["7182427311584347905", "7182427311584347906"],
    ) == {
        "category_id": "600001",
        "package_dimensions": {"length": 30, "width": 20, "height": 5, "unit": "INCH"},
        "size_chart": {"image_uri": "tos-maliva-i-o3syd03w52-us/size"},
        "certifications": [
            {"id": "7182427311584347905", "images": []},
            {"id": "7182427311584347906", "images": []},
        ],
    }
    assert parse_attributes(category=" 600001 ") == {"category_id": "600001"}
    assert parse_attributes(clear=["size-chart", "Certifications"], category="600002") == {
        "category_id": "600002",
        "size_chart": None,
        "certifications": None,
    }, "None clears an attribute"


@pytest.mark.parametrize(
    ("given", "option", "says"),
    [
        ({}, "--category", "nothing to set"),
        ({"category": "shoes"}, "--category", "not a TikTok category id"),
        ({"size_chart": "a b.png"}, "--size-chart", "no spaces"),
        ({"size_chart": " "}, "--size-chart", "not empty"),
        ({"certifications": ["1", "1"]}, "--certification", "twice"),
        ({"certifications": [str(n) for n in range(11)]}, "--certification", "at most 10"),
        ({"certifications": ["ISO 9001"]}, "--certification", "not a TikTok certification id"),
        ({"clear": ["weight"]}, "--clear", "use one of category, dimensions"),
        ({"clear": ["category"], "category": "600001"}, "--clear", "both set and cleared"),
    ],
)
def test_prod10_bad_attributes_are_refused_naming_the_option(given, option, says):
    with pytest.raises(AttributeInputError) as refused:
        parse_attributes(**given)
    assert refused.value.option == option and says in str(refused.value)


async def test_prod10_products_set_exits_2_on_bad_input_before_touching_the_database(tmp_path):
    db = tmp_path / "none.db"
    for options, says in [
        (["--dimensions", "10x8"], "LENGTHxWIDTHxHEIGHT"),
        (["--category", "shoes"], "not a TikTok category id"),
        ([], "nothing to set"),
    ]:
        result = await invoke_cli("products", "set", "p1", "--db", str(db), *options)
        assert result.exit_code == 2, result.output
        assert says in flat(result.output)
    assert not db.exists(), "nothing was created"


async def test_products_set_finds_the_listing_of_a_product_id(shop):
    import typer

    assert await _listing_key(shop.engine, "p1") == listing("p1")
    assert await _listing_key(shop.engine, listing("p2")) == listing("p2")
    with pytest.raises(typer.BadParameter, match="no product 'p'"):
        await _listing_key(shop.engine, "p")  # a prefix is not a product
    with pytest.raises(typer.BadParameter, match="no product"):
        await _listing_key(shop.engine, "p%")


async def test_prod10_products_set_saves_the_attributes_through_the_library(shop, db_path):
    """PROD-10 end to end: needs statecharts.merchant (the listing flows' library API)."""
    pytest.importorskip("statecharts.merchant")
    # `products set` writes, so it takes the database's lock (ENG-10): the
    # harness's engine lets go first, and what was saved is read back as a
    # merchant reads it.
    await shop.engine.stop()

    async def attributes_of(key: str) -> dict[str, Any]:
        shown = await invoke_cli("state", "--db", str(db_path), "--entity", key, "--json")
        return json.loads(shown.stdout)[0]["data"]["attributes"]

    result = await invoke_cli(
        "products",
        "set",
        "p2",
        "--db",
        str(db_path),
        "--category",
        "600002",
        "--dimensions",
        "30x20x5in",
        "--certification",
        "7182427311584347905",
    )
    assert result.exit_code == 0, result.output
    attributes = await attributes_of(listing("p2"))
    assert attributes["category_id"] == "600002"
    assert attributes["package_dimensions"] == {
        "length": 30,
        "width": 20,
        "height": 5,
        "unit": "INCH",
    }
    assert [c["id"] for c in attributes["certifications"]] == ["7182427311584347905"]
    [row] = [
        r
        for r in await listed("products", "--db", str(db_path), "--json")
        if r["product_id"] == "p2"
    ]
    assert row["category_id"] == "600002"
    cleared = await invoke_cli(
        "products", "set", listing("p2"), "--db", str(db_path), "--clear", "certifications"
    )
    assert cleared.exit_code == 0, cleared.output
    assert not (await attributes_of(listing("p2"))).get("certifications")
