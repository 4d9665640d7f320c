"""Destructive Shoplazza reports, confirmed before they act (PLAT-9).

products/delete and app/uninstalled arrive with headers Shoplazza does not
sign, so the adapter turns them into *reports* (``listing.deletion_reported``,
``connection.uninstall_reported``). A report asks Shoplazza's API for the
fact (``confirm_shoplazza_product_deleted``, ``confirm_shoplazza_uninstalled``,
`adapters.shoplazza.confirm`); the command's result event is what acts: the
existing ``listing.product_removed`` and ``connection.app_uninstalled``, or a
refusal that the entity keeps, so a merchant or an operator sees that a
deletion or an uninstall was reported and Shoplazza said otherwise.
"""

from __future__ import annotations

from engine.events import Payload
from engine.rules import Rules, StepContext

CONFIRM_DELETED = "confirm_shoplazza_product_deleted"
CONFIRM_UNINSTALLED = "confirm_shoplazza_uninstalled"


class DeletionReported(Payload):
    """products/delete named this product; Shoplazza is asked before anything acts."""

    product_id: str = ""


class ReportRefused(Payload):
    """Shoplazza's API contradicts a reported deletion or uninstall."""

    reason: str


def register_listing(rules: Rules) -> None:
    rules.register_events(
        {
            "listing.deletion_reported": DeletionReported,
            "listing.deletion_refused": ReportRefused,
        }
    )
    rules.register_actions(confirm_deletion, record_deletion_refused, clear_deletion_check)


def register_connection(rules: Rules) -> None:
    rules.register_events(
        {
            "connection.uninstall_reported": None,
            "connection.uninstall_refused": ReportRefused,
        }
    )
    rules.register_actions(confirm_uninstall, record_uninstall_refused, clear_uninstall_check)


def _store_and_product(listing: str) -> tuple[str, str]:
    """``listing:<store>:<product id>`` -> (store, product id); a key without a
    store part (a test chart walk's) gives an empty store."""
    store, _, product_id = listing.partition(":")[2].rpartition(":")
    return store, product_id


def confirm_deletion(ctx: StepContext) -> None:
    """Ask Shoplazza whether the product is gone; nothing is deactivated yet."""
    store, product_id = _store_and_product(ctx.event.entity)
    ctx.data["deletion_check"] = {"status": "checking", "reported_at": ctx.now}
    ctx.emit(
        CONFIRM_DELETED,
        {"listing": ctx.event.entity, "store": store, "product_id": product_id},
    )


def record_deletion_refused(ctx: StepContext) -> None:
    ctx.data["deletion_check"] = {
        "status": "refused",
        "reason": ctx.payload.reason,  # type: ignore[attr-defined]
        "checked_at": ctx.now,
    }


def clear_deletion_check(ctx: StepContext) -> None:
    ctx.data.pop("deletion_check", None)


def confirm_uninstall(ctx: StepContext) -> None:
    """Ask Shoplazza whether the store's token was revoked; the connection stands meanwhile."""
    ctx.data["uninstall_check"] = {"status": "checking", "reported_at": ctx.now}
    ctx.emit(
        CONFIRM_UNINSTALLED,
        {"connection": ctx.event.entity, "store": ctx.event.entity_id},
    )


def record_uninstall_refused(ctx: StepContext) -> None:
    ctx.data["uninstall_check"] = {
        "status": "refused",
        "reason": ctx.payload.reason,  # type: ignore[attr-defined]
        "checked_at": ctx.now,
    }


def clear_uninstall_check(ctx: StepContext) -> None:
    ctx.data.pop("uninstall_check", None)
