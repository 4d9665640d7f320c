"""Orders move from chart version 1 (statuses in data) to version 2 (three regions)."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.charts.configuration import atomic_states
from engine.charts.hierarchy import StateTree
from engine.charts.loader import read_chart_file
from statecharts import CHART_DIR
from statecharts.order import LIFECYCLE_RANK
from statecharts.order_upgrade import upgrade_from_v1

TREE = StateTree.from_spec(read_chart_file(CHART_DIR / "order.yaml").spec)
SYNC = [None, "not_synced", "syncing", "synced", "failed"]
FULFILLMENT = [
    None,
    "received",
    "waiting",
    "waiting_detail",
    "resolving",
    "pushing",
    "pushed",
    "failed",
    "not_applicable",
]
CORRECTION = [None, "resolving", "pushing", "synced", "not_synced"]


@st.composite
def v1_orders(draw: st.DrawFn) -> tuple[dict, str]:
    """A version 1 order: its flat lifecycle state, its data with statuses."""
    data: dict = {"order_id": "1", "update_time": draw(st.integers(0, 10))}
    sync_status = draw(st.sampled_from(SYNC))
    if sync_status is not None or draw(st.booleans()):
        data["sync"] = {"reason": draw(st.sampled_from([None, "authorization inactive"]))}
        if sync_status is not None:
            data["sync"]["status"] = sync_status
        if draw(st.booleans()):
            data["sync"]["awaiting_detail"] = True
            data["sync"]["retry_at"] = 5.0
    push_status = draw(st.sampled_from(FULFILLMENT))
    if push_status is not None:
        data["fulfillment"] = {"status": push_status, "reason": "carrier not mapped (ups)"}
        correction = draw(st.sampled_from(CORRECTION))
        if push_status == "pushed" and correction is not None:
            data["fulfillment"]["correction"] = {"status": correction, "tracking_number": "A2"}
    return data, draw(st.sampled_from(sorted(LIFECYCLE_RANK)))


@given(v1_orders())
def test_every_v1_order_lands_in_one_state_per_region_with_its_facts_kept(order):
    """Whatever statuses a version 1 order had, version 2 has it in exactly one
    atomic state of each region, keeps its reasons and ids, and no status is
    left in the data; the old data is not changed."""
    data, state = order
    before = copy.deepcopy(data)
    new, configuration = upgrade_from_v1(data, state)
    assert data == before, "the old data is left as it was"
    atomic = atomic_states(configuration)
    assert [leaf.split(".")[0] for leaf in atomic] == ["lifecycle", "sync", "fulfillment"]
    assert all(TREE.kind(leaf) in ("atomic", "final") for leaf in atomic), configuration
    assert atomic[0] == f"lifecycle.{state}"
    for part in ("sync", "fulfillment"):
        assert "status" not in new.get(part, {})
        assert new.get(part, {}).get("reason") == data.get(part, {}).get("reason") or (
            part == "sync" and data["sync"].get("awaiting_detail")
        )
    assert "status" not in new.get("fulfillment", {}).get("correction", {})
    assert new["order_id"] == "1" and new["update_time"] == data["update_time"]


@pytest.mark.parametrize(
    ("sync", "push", "correction", "expected"),
    [
        ("failed", None, None, "sync.failed,fulfillment.none"),
        ("synced", "pushed", None, "sync.synced,fulfillment.pushed.sent"),
        ("synced", "pushed", "not_synced", "sync.synced,fulfillment.pushed.correction_failed"),
        ("synced", "pushed", "synced", "sync.synced,fulfillment.pushed.corrected"),
        ("syncing", "waiting", None, "sync.syncing,fulfillment.waiting"),
    ],
)
def test_v1_statuses_become_the_states_of_the_same_name(sync, push, correction, expected):
    data: dict = {"sync": {"status": sync, "reason": None}}
    if push:
        data["fulfillment"] = {"status": push}
        if correction:
            data["fulfillment"]["correction"] = {"status": correction}
    _new, configuration = upgrade_from_v1(data, "lifecycle.on_hold")
    assert configuration == f"lifecycle.on_hold,{expected}"


def test_a_retry_waiting_for_the_detail_is_not_synced_while_it_is_fetched():
    data = {"sync": {"status": "failed", "reason": "auth inactive", "awaiting_detail": True}}
    new, configuration = upgrade_from_v1(data, "awaiting_shipment")
    assert configuration.split(",")[1] == "sync.not_synced"
    assert new["sync"] == {"reason": "waiting for the order detail"}


def test_a_status_version_1_never_wrote_stops_the_migration():
    with pytest.raises(ValueError, match="unknown fulfillment status 'lost'"):
        upgrade_from_v1({"fulfillment": {"status": "lost"}}, "unpaid")
