"""The merchant's views: the Product Sync List, the order list and the shops.

Read models over the engine's entities table, which the engine keeps current
with every committed transition; nothing here scans the event log.

What a merchant reads is the chart's own ``label:`` of each state (Pending
Sync, On Hold, ...), read from the installed chart files, so a state a chart
gains shows under its label without a change here. Filters take a label or a
state id in any case; a value that is neither raises `UnknownFilterValue`
naming the valid ones. Times are ISO 8601 in UTC (``2026-11-29T17:52:30Z``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from engine.charts.configuration import is_active, region_state
from engine.charts.loader import read_chart_file
from engine.store.read_models import Equals, ReadModels, Where
from engine.vault import ERASED, is_sealed
from statecharts.chart_states import atomic_under, nested_state_labels, top_state

LISTING_CHART = "product_listing"
ORDER_CHART = "order"
CONNECTION_CHART = "shop_connection"
SALES_CHANNELS = ("TikTok Shop",)

# The order chart's regions (lifecycle ∥ sync ∥ fulfillment): an order's
# status, sync status and fulfillment push status are the states its regions are in.
ORDER_LIFECYCLE, ORDER_SYNC, ORDER_FULFILLMENT = "lifecycle", "sync", "fulfillment"
# The fulfillment region's initial state: no fulfillment made in Shoplazza yet.
NO_FULFILLMENT = "none"


# ------------------------------------------------------------------ labels and filters


def humanize(value: str) -> str:
    """``PARTIALLY_REFUNDED`` -> ``Partially refunded``: for values no chart labels."""
    words = value.replace("_", " ").replace("-", " ").split()
    return " ".join(words).capitalize()


def _normalized(value: str) -> str:
    """Labels and ids compare alike: any case, ``_``/``-``/spaces the same."""
    return " ".join(value.replace("_", " ").replace("-", " ").split()).casefold()


@functools.cache
def chart_state_labels(chart: str) -> dict[str, str]:
    """State id -> label of an installed chart of this package, in chart order."""
    from statecharts import chart_package

    for file in chart_package().chart_files:
        spec = read_chart_file(file).spec
        if spec.name == chart:
            return {state: spec.states[state].label for state in spec.states}
    raise LookupError(f"no chart named {chart!r} in this package")


class UnknownFilterValue(ValueError):
    """A filter value that is neither a label nor an id of what it filters."""

    def __init__(self, what: str, value: str, choices: dict[str, str]) -> None:
        self.what, self.value, self.choices = what, value, choices
        valid = ", ".join(f"{label} ({key})" for key, label in choices.items())
        super().__init__(f"{value!r} is not {what}; use one of: {valid}")


@dataclass(frozen=True)
class Choices:
    """The values a filter takes: ids and the labels a merchant reads."""

    what: str
    labels: dict[str, str] = field(default_factory=dict)

    def resolve(self, value: str) -> str:
        """The id a label or id names, whatever its case; else `UnknownFilterValue`."""
        wanted = _normalized(value)
        for key, label in self.labels.items():
            if wanted in (_normalized(key), _normalized(label)):
                return key
        raise UnknownFilterValue(self.what, value, self.labels)

    def label(self, key: str | None) -> str:
        if key is None:
            return ""
        return self.labels.get(key) or humanize(key)


def listing_statuses() -> Choices:
    return Choices("a product status", chart_state_labels(LISTING_CHART))


@functools.cache
def order_region_labels(region: str) -> dict[str, str]:
    """State name -> label of one region of the order chart, in chart order."""
    from statecharts import chart_package

    specs = [read_chart_file(file).spec for file in chart_package().chart_files]
    newest = max((s for s in specs if s.name == ORDER_CHART), key=lambda s: s.version)
    return {name: child.label for name, child in newest.states[region].states.items()}


def order_statuses() -> Choices:
    return Choices("an order status", order_region_labels(ORDER_LIFECYCLE))


def sync_statuses() -> Choices:
    return Choices("a sync status", order_region_labels(ORDER_SYNC))


def fulfillment_statuses() -> Choices:
    return Choices("a fulfillment status", order_region_labels(ORDER_FULFILLMENT))


def sales_channels() -> Choices:
    return Choices("a sales channel", {name: name for name in SALES_CHANNELS})


def iso_time(value: Any) -> str | None:
    """A stored time as ISO 8601 in UTC: epoch seconds (TikTok's, the engine's
    clock) or an ISO string with its own offset (Shoplazza's). A string that
    is no time is shown as it is rather than lost."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | float):
        moment = datetime.fromtimestamp(value, UTC)
    else:
        try:
            moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            return str(value)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def reason_text(failure_reasons: list[dict[str, Any]]) -> str:
    """Failure reasons as a merchant reads them: the stored sentences, in order."""
    parts = [
        str(text).strip()
        for item in failure_reasons
        for text in item.get("reasons") or []
        if str(text).strip()
    ]
    out = ""
    for part in parts:
        if out:
            out += " " if out[-1] in ".!?" else "; "
        out += part
    return out


# ------------------------------------------------------------------ reading a chart's entities

Row = TypeVar("Row")


async def _rows(
    store: ReadModels,
    chart: str,
    labels: Choices,
    status: str | None,
    row: Callable[[str, str, dict[str, Any], Choices], Row],
    where: Where | None = None,
) -> list[Row]:
    """Every list reads one chart's entities, optionally in one state (a label
    or an id), as rows by key, so every list reads in the same order."""
    states = () if status is None else (labels.resolve(status),)
    return [
        row(entity.key, entity.state, entity.data, labels)
        for entity in await store.find_entities(chart, states=states, where=where)
    ]


async def _nested_rows(
    store: ReadModels,
    chart: str,
    labels: Choices,
    status: str | None,
    row: Callable[[str, str, dict[str, Any], Choices], Row],
) -> list[Row]:
    """`_rows` for a chart with compound states: a status names a state and
    the list holds the entities in it, whichever of its substates they are in
    (and those of an older version still in it by that id, not yet migrated)."""
    chosen = None if status is None else labels.resolve(status)
    states = () if chosen is None else (chosen, *atomic_under(chart, chosen))
    return [
        row(entity.key, entity.state, entity.data, labels)
        for entity in await store.find_entities(chart, states=states)
    ]


# ------------------------------------------------------------------ Product Sync List


@dataclass(frozen=True)
class ProductRow:
    key: str
    product_id: str
    title: str
    status: str
    status_label: str
    reason: str
    failure_reasons: list[dict[str, Any]]
    edit_failure_reasons: list[dict[str, Any]]
    deactivated_reason: str | None
    last_sync_at: str | None
    tiktok_product_id: str | None
    category_id: str | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# The state a product is in once deleted or unpublished in Shoplazza (PROD-8):
# its reason is why, never an older rejection. TikTok's own deactivations have
# states of their own whose reasons are failure reasons like any other.
DEACTIVATED_IN_SHOPLAZZA = "deactivated"


def product_row(key: str, state: str, data: dict[str, Any], labels: Choices) -> ProductRow:
    """The status is the top-level state, TikTok's status as the merchant knows
    it (``approved.edit_held`` reads Approved); a held edit shows as a reason."""
    state = top_state(state)
    failures = list(data.get("failure_reasons") or [])
    # PROD-12: an edit held back (failed checks, or refused by TikTok) while the
    # product keeps its state on TikTok is shown as a reason too.
    edit_failures = list(data.get("edit_failure") or [])
    deactivated = data.get("deactivated_because") if state == DEACTIVATED_IN_SHOPLAZZA else None
    reason = deactivated or reason_text(failures + edit_failures)
    category = data.get("category") or {}
    attributes = data.get("attributes") or {}
    return ProductRow(
        key=key,
        product_id=str((data.get("product") or {}).get("id") or key.rsplit(":", 1)[-1]),
        title=data.get("title") or (data.get("product") or {}).get("title") or "",
        status=state,
        status_label=labels.label(state),
        reason=reason,
        failure_reasons=failures,
        edit_failure_reasons=edit_failures,
        deactivated_reason=deactivated,
        last_sync_at=iso_time(data.get("last_sync_at")),
        tiktok_product_id=data.get("tiktok_product_id"),
        category_id=attributes.get("category_id") or category.get("category_id"),
    )


async def product_sync_list(store: ReadModels, status: str | None = None) -> list[ProductRow]:
    """Every listing, by key; ``status`` is a label or a state id (any case)."""
    return await _nested_rows(store, LISTING_CHART, listing_statuses(), status, product_row)


# ------------------------------------------------------------------ order list


@dataclass(frozen=True)
class OrderRow:
    key: str
    order_id: str
    sales_channel: str
    status: str
    status_label: str
    tiktok_update_time: str | None
    sync_status: str
    sync_status_label: str
    sync_reason: str | None
    shoplazza_order_id: str | None
    shoplazza_created_at: str | None
    shoplazza_status: str | None
    shoplazza_financial_status: str | None
    shoplazza_fulfillment_status: str | None
    returns: list[dict[str, Any]]
    tiktok_create_time: str | None
    fulfillment_status: str | None
    fulfillment_status_label: str
    fulfillment_reason: str | None
    # What the channel keeps of the buyer's address (SEC-3): "sealed",
    # "[erased]", "removed after retention", or None (never fetched).
    buyer_address: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def buyer_address(data: dict[str, Any]) -> str | None:
    personal = data.get("personal_data") or {}
    if personal.get("status") == "erased":
        return ERASED
    if "address_removed_at" in personal:
        return "removed after retention"
    return "sealed" if is_sealed(data.get("recipient_address")) else None


def shoplazza_side(state: str, data: dict[str, Any]) -> dict[str, str | None]:
    """The order as it stands in Shoplazza: what Shoplazza reported
    (``data.shoplazza``), else what the channel sent it (``data.shoplazza_sent``);
    None where neither says. Nothing before the order exists there (its sync
    region Synced)."""
    if region_status(state, ORDER_SYNC) != "synced":
        return {"status": None, "financial_status": None, "fulfillment_status": None}
    reported = data.get("shoplazza") or {}
    sent = data.get("shoplazza_sent") or {}
    status = reported.get("status") or ("cancelled" if sent.get("cancelled") else None)
    return {
        "status": status,
        "financial_status": reported.get("financial_status") or sent.get("financial_status"),
        "fulfillment_status": reported.get("fulfillment_status") or sent.get("fulfillment_status"),
    }


def returns_of(data: dict[str, Any]) -> list[dict[str, Any]]:
    """TikTok returns and refunds, the latest state of each (by TikTok's
    update_time, arrival order on a tie), in the order first seen."""
    latest: dict[str, dict[str, Any]] = {}
    for change in data.get("returns") or []:
        ident = change.get("return_id") or change.get("return_type") or ""
        known = latest.get(ident)
        if known and (known.get("update_time") or 0) > (change.get("update_time") or 0):
            continue  # an older update delivered late
        latest[ident] = change
    return [
        {
            "return_id": change.get("return_id") or None,
            "return_type": change.get("return_type") or None,
            "return_status": change.get("return_status") or None,
            "cancel_status": change.get("cancel_status") or None,
            "updated_at": iso_time(change.get("update_time") or change.get("at")),
        }
        for change in latest.values()
    ]


def region_status(state: str, region: str) -> str | None:
    """The state name one region of an order's configuration is in
    (``lifecycle.on_hold,sync.failed,fulfillment.none``, ``sync`` -> ``failed``)."""
    leaf = region_state(state, region)
    return leaf.removeprefix(region + ".") if leaf else None


def order_row(key: str, state: str, data: dict[str, Any], labels: Choices) -> OrderRow:
    sync = data.get("sync") or {}
    fulfillment = data.get("fulfillment") or {}
    shoplazza = shoplazza_side(state, data)
    status = region_status(state, ORDER_LIFECYCLE) or state
    sync_status = region_status(state, ORDER_SYNC) or "not_synced"
    # The push's status is the region's child (Sent to TikTok stays Sent while
    # a correction of it, a state inside it, goes out).
    pushed = (region_status(state, ORDER_FULFILLMENT) or NO_FULFILLMENT).split(".")[0]
    fulfillment_status = None if pushed == NO_FULFILLMENT else pushed
    return OrderRow(
        key=key,
        order_id=str(data.get("order_id") or key.split(":", 1)[-1]),
        sales_channel=data.get("channel", ""),
        status=status,
        status_label=labels.label(status),
        tiktok_update_time=iso_time(data.get("update_time")),
        sync_status=sync_status,
        sync_status_label=sync_statuses().label(sync_status),
        sync_reason=sync.get("reason"),
        shoplazza_order_id=sync.get("shoplazza_order_id"),
        shoplazza_created_at=iso_time(data.get("shoplazza_created_at")),
        shoplazza_status=shoplazza["status"],
        shoplazza_financial_status=shoplazza["financial_status"],
        shoplazza_fulfillment_status=shoplazza["fulfillment_status"],
        returns=returns_of(data),
        tiktok_create_time=iso_time((data.get("detail") or {}).get("tiktok_create_time")),
        fulfillment_status=fulfillment_status,
        fulfillment_status_label=fulfillment_statuses().label(fulfillment_status),
        fulfillment_reason=fulfillment.get("reason"),
        buyer_address=buyer_address(data),
    )


async def order_list(
    store: ReadModels,
    *,
    channel: str | None = None,
    status: str | None = None,
    sync_status: str | None = None,
) -> list[OrderRow]:
    """Every order, by key. ``status`` and ``sync_status`` are labels or ids
    (any case) of the lifecycle's and the sync region's states; ``channel``
    is a sales channel name (any case)."""
    labels = order_statuses()
    wanted: list[str] = []
    if status is not None:
        wanted.append(f"{ORDER_LIFECYCLE}.{labels.resolve(status)}")
    if sync_status is not None:
        wanted.append(f"{ORDER_SYNC}.{sync_statuses().resolve(sync_status)}")
    where: dict[str, Any] = {}
    if channel is not None:
        where["channel"] = Equals(channel, any_case=True)
    return [
        order_row(entity.key, entity.state, entity.data, labels)
        for entity in await store.find_entities(ORDER_CHART, where=where)
        if all(is_active(entity.state, state_id) for state_id in wanted)
    ]


# ------------------------------------------------------------------ shops (the connection)


@dataclass(frozen=True)
class ShopRow:
    key: str
    store_domain: str | None
    status: str
    status_label: str
    reason: str | None
    account_type: str | None
    tiktok_shop_id: str | None
    tiktok_shop_name: str | None
    fulfillment_model: str | None
    carrier_mapping: list[dict[str, Any]]
    terms_accepted_at: str | None
    authorized_at: str | None
    authorization_expires_at: str | None
    inactive_since: str | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def connection_statuses() -> Choices:
    """Every state at any depth: ``authorized`` (Active) and its substates."""
    return Choices("a connection status", nested_state_labels(CONNECTION_CHART))


def _carriers(logistics: dict[str, Any]) -> list[dict[str, Any]]:
    names = {sp.get("id"): sp.get("name") for sp in logistics.get("shipping_providers") or []}
    return [
        {
            "tracking_company_code": code,
            "shipping_provider_id": provider,
            "shipping_provider_name": names.get(provider),
        }
        for code, provider in sorted((logistics.get("carrier_mapping") or {}).items())
    ]


def shop_row(key: str, state: str, data: dict[str, Any], labels: Choices) -> ShopRow:
    """Tokens are never in an entity's data; only their expiry times are."""
    authorization = data.get("authorization") or {}
    warning = data.get("expiry_warning") or {}
    tiktok = data.get("tiktok_shop") or {}
    logistics = data.get("logistics") or {}
    expires = warning.get("expiration_time") or authorization.get("refresh_token_expire_in")
    reason = data.get("inactive_reason")
    if not reason and warning:
        reason = warning.get("message") or f"the authorization expires at {iso_time(expires)}"
    return ShopRow(
        key=key,
        store_domain=(data.get("store") or {}).get("domain"),
        status=state,
        status_label=labels.label(state),
        reason=reason,
        account_type=data.get("account_type"),
        tiktok_shop_id=tiktok.get("shop_id"),
        tiktok_shop_name=tiktok.get("shop_name"),
        fulfillment_model=logistics.get("fulfillment_model"),
        carrier_mapping=_carriers(logistics),
        terms_accepted_at=iso_time(data.get("terms_accepted_at")),
        authorized_at=iso_time(authorization.get("authorized_at")),
        authorization_expires_at=iso_time(expires),
        # Kept past a re-authorization; it means something only with its reason.
        inactive_since=iso_time(data.get("inactive_since"))
        if data.get("inactive_reason")
        else None,
    )


async def shop_list(store: ReadModels, status: str | None = None) -> list[ShopRow]:
    """Every connected (or connecting) store; ``status`` is a label or an id."""
    return await _nested_rows(store, CONNECTION_CHART, connection_statuses(), status, shop_row)
