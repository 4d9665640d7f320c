"""Moving an order from chart version 1 (flat: the lifecycle was the state, the
Shoplazza sync and the fulfillment push were statuses in data) to version 2
(lifecycle ∥ sync ∥ fulfillment, the statuses are states).

`upgrade_from_v1` is the data migration of version 2's upgrade: it gets the
old data and the state after the upgrade's renames (``on_hold`` became
``lifecycle.on_hold``) and returns the data without the statuses and the
configuration of all three regions they named.
"""

from __future__ import annotations

import copy
from typing import Any

from engine.charts.configuration import join_states
from statecharts.order import WAITING_FOR_DETAIL, lifecycle_of

# Version 1's data statuses and the version 2 states they became.
SYNC_STATES: dict[str | None, str] = {
    "not_synced": "sync.not_synced",
    "syncing": "sync.syncing",
    "synced": "sync.synced",
    "failed": "sync.failed",
}
FULFILLMENT_STATES: dict[str | None, str] = {
    None: "fulfillment.none",
    # Version 1 recorded "received" and moved on within the same step: an order
    # kept there was on its way to the carrier lookup.
    "received": "fulfillment.resolving",
    "waiting": "fulfillment.waiting",
    "waiting_detail": "fulfillment.waiting_detail",
    "resolving": "fulfillment.resolving",
    "pushing": "fulfillment.pushing",
    "failed": "fulfillment.failed",
    "not_applicable": "fulfillment.not_applicable",
}
CORRECTION_STATES: dict[str | None, str] = {
    None: "fulfillment.pushed.sent",
    "resolving": "fulfillment.pushed.correcting",
    "pushing": "fulfillment.pushed.correcting",
    "synced": "fulfillment.pushed.corrected",
    "not_synced": "fulfillment.pushed.correction_failed",
}


def upgrade_from_v1(data: dict[str, Any], state: str) -> tuple[dict[str, Any], str]:
    """(version 1 data, its lifecycle state) -> (version 2 data, configuration)."""
    new = copy.deepcopy(data)
    sync_state = _sync_state(new)
    fulfillment_state = _fulfillment_state(new)
    lifecycle = f"lifecycle.{lifecycle_of(state)}"
    return new, join_states([lifecycle, sync_state, fulfillment_state])


def _sync_state(data: dict[str, Any]) -> str:
    sync = data.get("sync")
    if not isinstance(sync, dict):
        return SYNC_STATES["not_synced"]
    status = sync.pop("status", None) or "not_synced"
    if sync.pop("awaiting_detail", False):
        # A version 1 retry waiting for the order detail: version 2 fetches the
        # detail from Not synced, and resolves the products when it arrives.
        sync["reason"] = WAITING_FOR_DETAIL
        sync.pop("retry_at", None)
        return SYNC_STATES["not_synced"]
    return _mapped(SYNC_STATES, status, "sync")


def _fulfillment_state(data: dict[str, Any]) -> str:
    fulfillment = data.get("fulfillment")
    if not isinstance(fulfillment, dict):
        return FULFILLMENT_STATES[None]
    status = fulfillment.pop("status", None)
    if status != "pushed":
        return _mapped(FULFILLMENT_STATES, status, "fulfillment")
    correction = fulfillment.get("correction")
    if not isinstance(correction, dict):
        return CORRECTION_STATES[None]
    return _mapped(CORRECTION_STATES, correction.pop("status", None), "correction")


def _mapped(states: dict[str | None, str], status: str | None, what: str) -> str:
    """The version 2 state of a version 1 status; one version 1 never wrote is
    an error (the migration stops there rather than guess)."""
    if status not in states:
        raise ValueError(f"version 1 order with an unknown {what} status {status!r}")
    return states[status]
