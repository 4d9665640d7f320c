"""The listing's cycles as states (chart version 2): an edit queued behind the
create, a held edit (PROD-12) and how it ends, a local rejection's correction."""

from __future__ import annotations

from statecharts.merchant import reactivate_product
from statecharts.views import product_sync_list
from tests.channel.harness import PACKAGE, SHOP, listing, product

WEIGHT_MISSING = "Add the package weight in Shoplazza (variant SKU-p1-0 has none)."


async def _in_flight(channel) -> str:
    """p1 added, its create sent but not yet answered by TikTok."""
    await channel.set_attributes("p1", package_dimensions=PACKAGE)
    key = listing("p1")
    await channel.send("listing.added", key, {"shop": SHOP, "product": product("p1")}, settle=False)
    assert await channel.state(key) == "pending_sync.sending"
    return key


async def _approved(channel) -> str:
    await channel.add_products(product("p1"))
    await channel.approve("p1")
    assert await channel.state(listing("p1")) == "approved.selling"
    return listing("p1")


def _reasons(data: dict) -> list[str]:
    return [reason["reasons"][0] for reason in data.get("edit_failure") or []]


async def test_an_edit_while_the_create_is_in_flight_goes_out_once_tiktok_answers(connected):
    channel = connected
    key = await _in_flight(channel)
    renamed = {"product": product("p1", title="Linen shirt")}
    await channel.send("listing.product_updated", key, renamed, settle=False)
    assert await channel.state(key) == "pending_sync.edited"
    assert "edit_after_submission" not in await channel.data(key), "the state says it, not a flag"
    await channel.settle()
    assert await channel.state(key) == "in_review.reviewing"
    assert len(channel.tiktok.called("create_listing")) == 1, "never a second create"
    [edit] = channel.tiktok.called("edit_listing")
    assert edit["product"]["title"] == "Linen shirt"


async def test_a_failing_edit_in_flight_is_held_and_stays_held_through_tiktoks_approval(
    connected,
):
    channel = connected
    key = await _in_flight(channel)
    await channel.send(
        "listing.product_updated", key, {"product": product("p1", weight=0)}, settle=False
    )
    assert await channel.state(key) == "pending_sync.edit_held"
    await channel.settle()
    assert await channel.state(key) == "in_review.edit_held"
    assert not channel.tiktok.called("edit_listing")
    [row] = await product_sync_list(channel.engine.store)
    assert (row.status, row.status_label, row.reason) == ("in_review", "In Review", WEIGHT_MISSING)
    await channel.approve("p1")
    assert await channel.state(key) == "approved.edit_held"
    assert _reasons(await channel.data(key)) == [WEIGHT_MISSING]
    # Fixed in Shoplazza, back to what TikTok has: the held edit is over, nothing to send.
    await channel.send("listing.product_updated", key, {"product": product("p1")})
    assert await channel.state(key) == "approved.selling"
    assert "edit_failure" not in await channel.data(key)
    assert not channel.tiktok.called("edit_listing")


async def test_tiktoks_rejection_and_a_deactivation_end_a_held_edit(connected):
    channel = connected
    key = await _approved(channel)
    await channel.send("listing.product_updated", key, {"product": product("p1", weight=0)})
    assert await channel.state(key) == "approved.edit_held"
    await channel.review("p1", "FAILED")
    assert await channel.state(key) == "rejected.by_tiktok"
    data = await channel.data(key)
    assert "edit_failure" not in data and data["failure_reasons"][0]["source"] == "tiktok"

    await channel.approve("p1")
    await channel.send("listing.product_updated", key, {"product": product("p1", weight=0)})
    assert await channel.state(key) == "approved.edit_held"
    await channel.send("listing.product_removed", key, {"reason": "deleted"})
    assert await channel.state(key) == "deactivated"
    assert "edit_failure" not in await channel.data(key)


async def test_a_reactivation_whose_product_now_fails_the_checks_holds_the_edit(connected):
    channel = connected
    key = await _approved(channel)
    await channel.review("p1", "SELLER_DEACTIVATED")
    await channel.send("listing.product_updated", key, {"product": product("p1", weight=0)})
    assert await channel.state(key) == "seller_deactivated"
    await reactivate_product(channel.engine, key)
    await channel.settle()
    assert await channel.state(key) == "in_review.edit_held"
    assert len(channel.tiktok.called("activate_listing")) == 1, "TikTok's version sells again"
    assert not channel.tiktok.called("edit_listing"), "the failing version is never sent"
    assert _reasons(await channel.data(key)) == [WEIGHT_MISSING]


async def test_tiktok_refusing_the_edit_of_a_live_product_holds_it(connected):
    """A re-added product TikTok still sells goes out as an edit; TikTok's
    refusal leaves it selling, the refusal held as the edit's reason."""
    channel = connected
    key = await _approved(channel)
    await channel.send("listing.product_removed", key, {"reason": "unpublished"})
    added = {"shop": SHOP, "product": product("p1", title="Linen shirt")}
    await channel.send("listing.added", key, added, settle=False)
    assert await channel.state(key) == "pending_sync.sending"
    refusal = {"code": 12019001, "message": "title has a banned word"}
    await channel.send("listing.submit_failed", key, refusal, settle=False)
    assert await channel.state(key) == "approved.edit_held"
    assert "banned word" in _reasons(await channel.data(key))[0]


async def test_a_local_rejection_is_corrected_by_an_edit_that_passes(connected):
    channel = connected
    await channel.add_products(product("p1", weight=None))
    key = listing("p1")
    assert await channel.state(key) == "rejected.failing_checks"
    assert not channel.tiktok.called("create_listing")
    await channel.send("listing.product_updated", key, {"product": product("p1", weight=0)})
    assert await channel.state(key) == "rejected.failing_checks", "still failing: nothing sent"
    assert not channel.tiktok.called("create_listing")
    await channel.send("listing.product_updated", key, {"product": product("p1")})
    assert await channel.state(key) == "in_review.reviewing"
    assert len(channel.tiktok.called("create_listing")) == 1
