"""How entities of version 1 of the listing chart move to version 2.

Version 1 kept two cycles of a listing in its data: ``edit_after_submission``
(changed while the create was in flight) and ``edit_failure`` (an edit held
because it fails the checks, PROD-12); a local rejection showed only as
``submitted_content: null``. Version 2 has states for them. The chart's
``upgrades`` entry renames each state to its plain substate
(``approved`` -> ``approved.selling``); this function then reads the data to
put the entity in the substate its data says it is in, and drops the flag.
"""

from __future__ import annotations

from typing import Any

# The plain substates that have an edit_held sibling in version 2.
_HOLDS_EDITS = (
    "pending_sync.sending",
    "in_review.reviewing",
    "approved.selling",
    "platform_deactivated.off_sale",
)


def listing_v1_to_v2(data: dict[str, Any], state: str) -> tuple[dict[str, Any], str]:
    """(data, configuration after the renames) -> the version 2 data and configuration."""
    data = dict(data)
    queued_edit = bool(data.pop("edit_after_submission", False))
    if state == "pending_sync.sending" and queued_edit:
        # The queued version passes the checks and goes out once TikTok answers.
        data.pop("edit_failure", None)
        return data, "pending_sync.edited"
    held = data.pop("edit_failure", None)
    if held and state in _HOLDS_EDITS:
        data["edit_failure"] = held
        return data, state.split(".", 1)[0] + ".edit_held"
    # Version 2 holds no edit in the other states: TikTok's word, or the
    # deactivation, is the reason there, as it is for an entity of version 2.
    # A local rejection records that nothing reached TikTok (None); a listing
    # older than that record has no key at all and was TikTok's to reject.
    local = "submitted_content" in data and data["submitted_content"] is None
    if state == "rejected.by_tiktok" and local:
        return data, "rejected.failing_checks"
    return data, state
