"""The order chart's regions meeting in one step (lifecycle ∥ sync ∥ fulfillment).

Each test steps the chart directly, so it sees what one event did: which
regions moved, which commands went out, and that the data holds facts only.
"""

from __future__ import annotations

from typing import Any

from engine import ChartSet
from engine.step import EntityState, Outcome, StepResult, new_entity, step
from statecharts import chart_package

CHARTS = ChartSet.load([chart_package()])
ORDER = CHARTS.by_kind["order"]
KEY = "order:1"


class Order:
    """One order stepped event by event, as the engine would."""

    def __init__(self) -> None:
        self.entity: EntityState = new_entity(ORDER, KEY)
        self.now = 1_000.0
        self.seen = 0

    def send(self, event_type: str, payload: dict[str, Any] | None = None) -> StepResult:
        self.seen += 1
        event = CHARTS.event_types.make(
            event_type,
            KEY,
            payload or {},
            event_id=f"e{self.seen}",
            source="test",
            received_at=self.now,
        )
        result = step(ORDER, self.entity, event)
        assert result.outcome is not Outcome.ERROR, result.reason
        self.entity = result.entity
        return result

    def status(self, status: str, update_time: int) -> StepResult:
        payload = {"order_id": "1", "order_status": status, "update_time": update_time}
        return self.send("order.status_changed", payload)

    def detail(self, line_item_id: str = "li-1") -> StepResult:
        item = {"id": line_item_id, "product_id": "p1"}
        payload = {"id": "1", "status": "X", "create_time": 1, "update_time": 1}
        return self.send("order.detail_fetched", {**payload, "line_items": [item]})

    def fulfilled(self) -> StepResult:
        payload = {"tracking_number": "9400", "tracking_company_code": "usps"}
        return self.send("order.shoplazza_fulfilled", payload)


def commands(result: StepResult) -> list[str]:
    return [command.type for command in result.commands]


def test_a_new_order_is_in_each_regions_initial_state():
    order = Order()
    order.status("UNPAID", 1)
    assert order.entity.state == "lifecycle.unpaid,sync.not_synced,fulfillment.none"
    assert order.entity.data["sync"] == {"reason": "waiting for the order detail"}


def test_the_detail_is_recorded_and_starts_the_sync_in_the_same_step():
    """The lifecycle keeps the detail, and the sync region, Not synced, resolves
    the products from it: two regions, one event."""
    order = Order()
    order.status("AWAITING_SHIPMENT", 1)
    result = order.detail()
    assert order.entity.state == "lifecycle.awaiting_shipment,sync.syncing,fulfillment.none"
    assert commands(result) == ["resolve_order_products"]
    assert order.entity.data["detail"]["line_items"][0]["id"] == "li-1"


def test_a_status_past_the_hold_moves_the_lifecycle_and_releases_the_push_in_one_step():
    """LOGI-4: held while On Hold; the status that ends the hold moves the
    lifecycle and sends the waiting push to the carrier lookup together."""
    order = Order()
    order.status("ON_HOLD", 1)
    order.detail()
    order.fulfilled()
    assert order.entity.state.endswith(",fulfillment.waiting")
    result = order.status("AWAITING_SHIPMENT", 2)
    assert result.outcome is Outcome.TRANSITIONED
    assert order.entity.state == ("lifecycle.awaiting_shipment,sync.syncing,fulfillment.resolving")
    # The address becomes visible (a fetch) and the carrier is looked up.
    assert commands(result) == ["fetch_order_detail", "resolve_carrier"]


def test_cancelling_a_held_order_ends_its_waiting_push():
    order = Order()
    order.status("ON_HOLD", 1)
    order.fulfilled()
    order.status("CANCELLED", 2)
    assert order.entity.state == "lifecycle.cancelled,sync.not_synced,fulfillment.not_applicable"
    assert order.entity.data["fulfillment"]["reason"] == "order cancelled on TikTok"
    # Entering Cancelled starts the address retention (an entry action, SEC-3).
    assert order.entity.data["personal_data"]["address_until"] > order.now


def test_a_stale_status_moves_no_region():
    order = Order()
    order.status("ON_HOLD", 5)
    order.fulfilled()
    before = order.entity.state
    stale = order.status("AWAITING_SHIPMENT", 4)
    assert stale.outcome is Outcome.IGNORED and stale.reason.startswith("stale")
    assert order.entity.state == before


def test_a_correction_is_a_state_inside_the_push_and_the_data_keeps_no_status():
    """LOGI-5: corrections move inside Sent to TikTok; no region's status is in data."""
    order = Order()
    order.status("AWAITING_SHIPMENT", 1)
    order.detail()
    order.fulfilled()
    resolved = {"tracking_company_code": "usps", "shipping_provider_id": "7"}
    order.send("order.carrier_resolved", {**resolved, "authorization_active": True})
    assert order.entity.state.endswith(",fulfillment.pushing")
    order.send("order.shipping_pushed", {"package_id": "1"})
    assert order.entity.state.endswith(",fulfillment.pushed.sent")
    order.send(
        "order.shoplazza_tracking_updated",
        {"tracking_number": "9401", "tracking_company_code": "usps"},
    )
    assert order.entity.state.endswith(",fulfillment.pushed.correcting")
    order.now += 73 * 3600
    order.send(
        "order.shoplazza_tracking_updated",
        {"tracking_number": "9402", "tracking_company_code": "usps"},
    )
    assert order.entity.state.endswith(",fulfillment.pushed.correction_failed")
    data = order.entity.data
    assert "status" not in data["sync"] and "status" not in data["fulfillment"]
    assert "status" not in data["fulfillment"]["correction"]
    assert "72-hour" in data["fulfillment"]["correction"]["reason"]


def test_a_failed_sync_retries_on_its_timer_and_only_while_failed():
    order = Order()
    order.status("AWAITING_SHIPMENT", 1)
    order.detail()
    failed = order.send(
        "order.products_resolved", {"authorization_active": True, "unsynced": ["Hat"]}
    )
    assert ",sync.failed," in order.entity.state
    assert [t.name for t in failed.timers if t.due_at is not None] == ["sync_retry"]
    due = order.entity.data["sync"]["retry_at"]
    retried = order.send("order.sync_retry_due", {"timer": "sync_retry", "due_at": due})
    assert ",sync.syncing," in order.entity.state
    assert commands(retried) == ["resolve_order_products"]
    again = order.send("order.retry_sync")
    assert again.outcome is Outcome.IGNORED, "nothing to retry while syncing"
