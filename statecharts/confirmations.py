"""Destructive Shoplazza reports, confirmed before they act (PLAT-9).

products/delete and app/uninstalled arrive with headers Shoplazza does not
sign, so the adapter turns them into *reports* to the store's connection
(``connection.deletion_reported``, ``connection.uninstall_reported``). A
report asks Shoplazza's API for the fact (``confirm_shoplazza_product_deleted``,
``confirm_shoplazza_uninstalled``, `adapters.shoplazza.confirm`); the
command's result event is what acts: ``listing.product_removed`` to the
listing, ``connection.app_uninstalled`` to the shop, or a refusal the shop
keeps, so a merchant or an operator sees that a deletion or an uninstall was
reported and Shoplazza said otherwise.

The shop, not the listing, takes deletion reports: it is the store's side of
the channel, and one place for them keeps the listing chart as it was (its
transitions are what the chart properties walk, one by one).
"""

from __future__ import annotations

from engine.events import Payload
from engine.rules import Rules, StepContext

CONFIRM_DELETED = "confirm_shoplazza_product_deleted"
CONFIRM_UNINSTALLED = "confirm_shoplazza_uninstalled"
KEPT_REFUSALS = 20  # the latest refused deletion reports a shop shows


class DeletionReported(Payload):
    """products/delete named this listing's product; Shoplazza is asked first."""

    listing: str
    product_id: str


class ReportRefused(Payload):
    """Shoplazza's API contradicts a reported deletion or uninstall."""

    reason: str
    listing: str = ""


def register(rules: Rules) -> None:
    rules.register_events(
        {
            "connection.uninstall_reported": None,
            "connection.uninstall_refused": ReportRefused,
            "connection.deletion_reported": DeletionReported,
            "connection.deletion_refused": ReportRefused,
        }
    )
    rules.register_actions(
        confirm_uninstall,
        record_uninstall_refused,
        clear_uninstall_check,
        confirm_deletion,
        record_deletion_refused,
    )


def confirm_deletion(ctx: StepContext[DeletionReported]) -> None:
    """Ask Shoplazza whether the product is gone; the listing hears nothing yet."""
    payload = ctx.payload
    ctx.emit(
        CONFIRM_DELETED,
        {
            "connection": ctx.event.entity,
            "listing": payload.listing,
            "product_id": payload.product_id,
        },
    )


def record_deletion_refused(ctx: StepContext[ReportRefused]) -> None:
    payload = ctx.payload
    refused = [r for r in ctx.data.get("refused_deletions", []) if r["listing"] != payload.listing]
    refused.append({"listing": payload.listing, "reason": payload.reason, "at": ctx.now})
    ctx.data["refused_deletions"] = refused[-KEPT_REFUSALS:]


def confirm_uninstall(ctx: StepContext) -> None:
    """Ask Shoplazza whether the store's token was revoked; the connection stands meanwhile."""
    ctx.data["uninstall_check"] = {"status": "checking", "reported_at": ctx.now}
    ctx.emit(
        CONFIRM_UNINSTALLED,
        {"connection": ctx.event.entity, "store": ctx.event.entity_id},
    )


def record_uninstall_refused(ctx: StepContext[ReportRefused]) -> None:
    ctx.data["uninstall_check"] = {
        "status": "refused",
        "reason": ctx.payload.reason,
        "checked_at": ctx.now,
    }


def clear_uninstall_check(ctx: StepContext) -> None:
    ctx.data.pop("uninstall_check", None)
