"""Listings of chart version 1 move to version 2's substates by their data."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from statecharts.chart_states import atomic_under
from statecharts.chart_upgrades import listing_v1_to_v2

HELD = [{"source": "local", "position": "weight", "reasons": ["Add the weight."]}]
# The chart's `states` renames of version 1's states (the rest keep their ids).
RENAMED = {
    "pending_sync": "pending_sync.sending",
    "in_review": "in_review.reviewing",
    "approved": "approved.selling",
    "rejected": "rejected.by_tiktok",
    "platform_deactivated": "platform_deactivated.off_sale",
}
V1_STATES = [
    "not_synced",
    "pending_sync",
    "in_review",
    "approved",
    "rejected",
    "deactivated",
    "seller_deactivated",
    "platform_deactivated",
    "frozen",
    "deleted_on_tiktok",
]


def test_an_edit_queued_behind_the_create_is_pending_sync_edited() -> None:
    data, state = listing_v1_to_v2(
        {"edit_after_submission": True, "edit_failure": HELD, "title": "Mug"},
        "pending_sync.sending",
    )
    assert state == "pending_sync.edited"
    assert data == {"title": "Mug"}


def test_a_held_edit_of_a_live_product_is_approved_edit_held() -> None:
    data, state = listing_v1_to_v2({"edit_failure": HELD}, "approved.selling")
    assert (state, data) == ("approved.edit_held", {"edit_failure": HELD})


def test_a_held_edit_where_version_2_holds_none_is_dropped() -> None:
    data, state = listing_v1_to_v2({"edit_failure": HELD}, "frozen")
    assert (state, data) == ("frozen", {})


def test_a_local_rejection_is_rejected_failing_checks() -> None:
    local = listing_v1_to_v2({"submitted_content": None}, "rejected.by_tiktok")
    tiktok = listing_v1_to_v2({"submitted_content": {"title": "Mug"}}, "rejected.by_tiktok")
    assert local[1] == "rejected.failing_checks"
    assert tiktok[1] == "rejected.by_tiktok"


def test_the_data_given_is_not_changed() -> None:
    given_data: dict[str, Any] = {"edit_after_submission": True}
    listing_v1_to_v2(given_data, "pending_sync.sending")
    assert given_data == {"edit_after_submission": True}


@settings(deadline=None)  # the first example pays for loading the charts
@given(
    state=st.sampled_from(V1_STATES),
    queued=st.sampled_from([None, True, False, 0, "yes"]),
    held=st.sampled_from([None, [], HELD]),
    submitted=st.sampled_from(["absent", None, {}, {"title": "Mug"}]),
)
def test_every_upgraded_listing_is_in_a_version_2_state_its_data_agrees_with(
    state: str, queued: Any, held: Any, submitted: Any
) -> None:
    """Whatever version 1 left: the state is an atomic state of version 2, no
    flag is left, and a held edit is in the data exactly when the state holds one."""
    data: dict[str, Any] = {"title": "Mug"}
    if queued is not None:
        data["edit_after_submission"] = queued
    if held is not None:
        data["edit_failure"] = held
    if submitted != "absent":
        data["submitted_content"] = submitted
    new_data, new_state = listing_v1_to_v2(data, RENAMED.get(state, state))
    assert new_state in atomic_under("product_listing", new_state.split(".", 1)[0])
    assert new_state.split(".", 1)[0] == state
    assert "edit_after_submission" not in new_data
    assert bool(new_data.get("edit_failure")) == new_state.endswith(".edit_held")
