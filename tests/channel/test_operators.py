"""OPS-1/OPS-2 in the channel: work held while the shop's authorization is
inactive is visible with its reason, and an operator can drop a piece of it
so that re-authorizing the shop does not carry it out."""

from __future__ import annotations

import json

from tests.channel.harness import PACKAGE, SHOP, listing, product
from tests.conftest import invoke_cli


async def test_ops_held_work_is_listed_with_its_reason_and_a_discard_survives_reauthorization(
    connected, db_path
):
    """OPS-1, OPS-2: while the authorization is inactive, create_listing
    commands are held and listed with the reason; the one an operator
    discards is not sent when the shop is authorized again, the other is."""
    channel = connected
    await channel.send("connection.deauthorized", SHOP, {"message": "seller deauthorized"})
    for pid in ("p1", "p2"):
        await channel.set_attributes(pid, settle=False, package_dimensions=PACKAGE)
        await channel.send("listing.added", listing(pid), {"shop": SHOP, "product": product(pid)})
    assert not channel.tiktok.called("create_listing")

    shown = await invoke_cli("commands", "--db", str(db_path), "--status", "held", "--json")
    held = {row["entity"]: row for row in json.loads(shown.stdout)}
    assert set(held) == {listing("p1"), listing("p2")}
    for row in held.values():
        assert row["type"] == "create_listing" and row["reason"], "held with a visible reason"

    discarded = await invoke_cli(
        "commands", "discard", str(held[listing("p2")]["id"]), "--db", str(db_path),
        "--by", "ops", "--reason", "merchant withdrew the product",
    )  # fmt: skip
    assert discarded.exit_code == 0, discarded.output

    await channel.authorize()
    assert [c["listing"] for c in channel.tiktok.called("create_listing")] == [listing("p1")]
    assert await channel.state(listing("p1")) == "in_review.reviewing"
    assert await channel.state(listing("p2")) == "pending_sync.sending"
    [row] = json.loads(
        (
            await invoke_cli("commands", "--db", str(db_path), "--status", "discarded", "--json")
        ).stdout
    )
    assert row["entity"] == listing("p2")
    assert row["reason"] == "discarded by ops: merchant withdrew the product"

    story = await invoke_cli("history", listing("p2"), "--db", str(db_path), "--json")
    [command] = [c for e in json.loads(story.stdout)["events"] for c in e["commands"]]
    assert (command["status"], command["reason"]) == (
        "discarded",
        "discarded by ops: merchant withdrew the product",
    )
