"""SEC-3: buyers' personal data sealed per order, erasable, retained for a set time.

Over the real sandboxes (loopback HTTP, a real SQLite file, real AES-GCM): an
order's address reaches Shoplazza in clear while the database holds only the
sealed form; `channelsync erase` destroys one order's key, `check` still
passes, `state` and `history` show "[erased]", and the other order is untouched.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from adapters.sandbox import story
from adapters.sandbox.story import Sandboxes, connect_shop
from adapters.shoplazza.commands import ShoplazzaCommands
from engine.erasure import ErasureRefused
from engine.outbox import CommandFailed, OutboxCommand
from engine.vault import KEYS_SUFFIX, PersonalDataErased, Vault, is_sealed
from tests.channel.harness import SHOP, product
from tests.conftest import invoke_cli

USPS = "7117858858072016686"
# Names no fixture uses, so finding them anywhere means the plaintext leaked.
MARKERS = {
    "erased": ("Quirinus Erasewell", "+1 555 0199 731", "77 Forgetme Lane"),
    "kept": ("Philomena Keepsake", "+1 555 0188 642", "12 Remember Road"),
}


def files_of(db: Path) -> list[Path]:
    """The database and everything SQLite keeps beside it (WAL, shared memory)."""
    return [p for p in db.parent.iterdir() if p.name.startswith(db.name) and p.is_file()]


def leaks(db: Path, texts: tuple[str, ...]) -> list[tuple[str, str]]:
    """(file, text) for every plaintext found in the bytes of the database files
    (not the keys file), raw or as JSON would escape it."""
    found = []
    for path in files_of(db):
        if path.name.endswith(KEYS_SUFFIX) or KEYS_SUFFIX + "-" in path.name:
            continue
        data = path.read_bytes()
        for text in texts:
            for form in (text.encode(), json.dumps(text).encode()[1:-1]):
                if form in data:
                    found.append((path.name, text))
    return found


def buyer(order: dict, role: str) -> None:
    name, phone, street = MARKERS[role]
    order["recipient_address"] = {
        "name": name,
        "phone_number": phone,
        "full_address": f"{street}, Springfield, IL 62701",
        "postal_code": "62701",
        "region_code": "US",
    }
    order["buyer_email"] = f"{name.split()[0].lower()}@buyer.example"


@pytest.fixture
async def box(tmp_path):
    started = await Sandboxes.start(tmp_path / "pii.db")
    try:
        await connect_shop(started)
        await started.service.add_collection(story.SHOP, "summer")
        await started.settle()
        await started.advance(2 * 3600)
        yield started
    finally:
        await started.stop()


async def awaiting_shipment(box: Sandboxes, role: str) -> str:
    shirt = await box.tiktok_product_id("1001")
    order_id = box.tiktok.create_order([{"product_id": shirt, "seller_sku": "SKU-1001"}])["id"]
    buyer(box.tiktok.orders[order_id], role)
    await box.settle()
    box.tiktok.order_action(order_id, "pay")
    await box.advance(3600)  # the hold ends: TikTok shows the address now (ORD-5)
    return order_id


async def test_sec3_erase_then_check_passes_and_views_show_the_fields_erased(box, tmp_path):
    """SEC-3: the address is sealed in the database and opened only for Shoplazza;
    erasing one order destroys its key, `check` passes, `state` and `history`
    show "[erased]", and another order's data is unaffected."""
    engine = box.service.engine
    erased_id = await awaiting_shipment(box, "erased")
    kept_id = await awaiting_shipment(box, "kept")

    # Shoplazza got the address in clear: the create command opened it.
    shoplazza_copy = box.shoplazza.orders[await box.shoplazza_order_id(erased_id)]
    assert shoplazza_copy["shipping_address"]["name"] == MARKERS["erased"][0]
    # The channel keeps it sealed, and the database files hold no plaintext,
    # neither before nor after a checkpoint.
    data = (await engine.entity(f"order:{erased_id}")).data
    assert is_sealed(data["recipient_address"])
    shoplazza_sealed = data["recipient_address"]
    everything = MARKERS["erased"] + MARKERS["kept"] + ("quirinus@buyer.example",)
    db = Path(engine.store.path)
    assert leaks(db, everything) == []
    with sqlite3.connect(db) as other:  # the WAL's frames copied into the file
        other.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
    assert leaks(db, everything) == []
    await box.service.stop()

    erased = await invoke_cli(
        "erase", f"order:{erased_id}", "--db", str(db), "--reason", "buyer request", "--by", "dpo"
    )
    assert erased.exit_code == 0, erased.output
    assert "erased" in erased.stdout

    checked = await invoke_cli("check", "--db", str(db))
    assert checked.exit_code == 0, checked.output
    assert checked.stdout.startswith("ok:")

    state = await invoke_cli("state", "--db", str(db), "--entity", f"order:{erased_id}", "--json")
    [record] = json.loads(state.stdout)
    assert record["data"]["recipient_address"] == "[erased]"
    assert record["data"]["personal_data"]["status"] == "erased"
    details = [h["payload"] for h in record["history"] if h["type"] == "order.detail_fetched"]
    assert details and all(d["buyer_email"] == "[erased]" for d in details)
    assert record["history"][-1]["type"] == "order.personal_data_erased"
    assert record["history"][-1]["payload"] == {"reason": "buyer request", "requested_by": "dpo"}
    history = await invoke_cli("history", f"order:{erased_id}", "--db", str(db), "--json")
    assert "[erased]" in history.stdout and '"sealed": "v1"' not in history.stdout
    orders = await invoke_cli("orders", "--db", str(db), "--json")
    rows = {row["order_id"]: row for row in json.loads(orders.stdout)}
    assert rows[erased_id]["buyer_address"] == "[erased]"
    assert rows[kept_id]["buyer_address"] == "sealed"

    # The other order: still sealed, still opens; the erased one never will.
    vault = Vault.beside(db)
    try:
        kept = json.loads(
            (
                await invoke_cli("state", "--db", str(db), "--entity", f"order:{kept_id}", "--json")
            ).stdout
        )
        assert kept[0]["data"]["recipient_address"] == "[sealed]"
        with sqlite3.connect(db) as conn:
            rows = conn.execute(
                "SELECT key, data FROM entities WHERE key IN (?, ?)",
                (f"order:{kept_id}", f"order:{erased_id}"),
            ).fetchall()
        stored = {entity: json.loads(data) for entity, data in rows}
        address = stored[f"order:{kept_id}"]["recipient_address"]
        assert vault.open(f"order:{kept_id}", address)["name"] == MARKERS["kept"][0]
        with pytest.raises(PersonalDataErased):
            vault.open(f"order:{erased_id}", shoplazza_sealed)
    finally:
        vault.close()

    # A redacted export carries neither the plaintext nor the sealed values.
    exported = tmp_path / "log.jsonl"
    done = await invoke_cli("export", "--db", str(db), "--out", str(exported), "--redact")
    assert done.exit_code == 0, done.output
    text = exported.read_text()
    assert '"[redacted]"' in text and '"sealed":"v1"' not in text
    assert not [m for m in everything if m in text]


# ---------------------------------------------------------------- harness-level rules


async def ready(channel):
    """USPS mapped and one product approved on TikTok."""
    await channel.send(
        "logistics.map_carrier",
        SHOP,
        {"tracking_company_code": "usps", "shipping_provider_id": USPS},
    )
    await channel.add_products(product("p1"))
    await channel.approve("p1")
    channel.pid = await channel.tiktok_product_id("p1")
    return channel


@pytest.fixture
async def shop(connected):
    return await ready(connected)


async def shipped_order(shop, order_id: str) -> None:
    shop.tiktok_order(order_id, product_ids=(shop.pid,))
    buyer(shop.tiktok.orders[order_id], "kept")
    await shop.order_status(order_id, "UNPAID", 100)
    await shop.order_status(order_id, "AWAITING_SHIPMENT", 200)


@pytest.mark.parametrize("final", ["COMPLETED", pytest.param("CANCELLED", marks=pytest.mark.slow)])
async def test_sec3_the_address_leaves_the_data_after_the_retention(db_path, clock, final):
    """SEC-3: once Completed or Cancelled plus the retention (a setting), the
    address leaves the order's data and its key is destroyed."""
    from tests.channel.harness import Channel

    channel = await Channel.open(db_path, clock, address_retention="2d")
    try:
        await channel.connect()
        await ready(channel)
        await shipped_order(channel, "9101")
        assert is_sealed((await channel.data("order:9101"))["recipient_address"])
        await channel.order_status("9101", final, 300)

        await channel.advance(2 * 86400 - 60)
        data = await channel.data("order:9101")
        assert is_sealed(data["recipient_address"]), "kept until the retention ends"

        await channel.advance(120)
        data = await channel.data("order:9101")
        assert "recipient_address" not in data
        assert data["personal_data"]["address_removed_at"] > 0
        assert data["personal_data"]["status"] == "erased", "the key went with it"
        assert channel.engine.vault.erased_at("order:9101") is not None
        # A late detail (an address update) brings nothing back.
        await channel.send("order.address_updated", "order:9101")
        assert "recipient_address" not in await channel.data("order:9101")
    finally:
        await channel.engine.stop()
    checked = await invoke_cli("check", "--db", str(db_path))
    assert checked.exit_code == 0, checked.output


async def test_sec3_erasure_overwrites_the_key_and_later_personal_data_is_dropped(shop):
    """SEC-3: erasing overwrites the key's bytes in the keys file (secure_delete,
    WAL truncated) and keeps a tombstone; personal fields arriving afterwards
    are never stored; unknown entities and charts without personal data are refused."""
    await shipped_order(shop, "9201")
    vault = shop.engine.vault
    key = vault._key("order:9201")
    assert key is not None and len(key) == 32

    def keys_files() -> list[Path]:
        return [
            p for p in Path(vault.path).parent.iterdir() if p.name.startswith(Path(vault.path).name)
        ]

    assert any(key in p.read_bytes() for p in keys_files())
    await shop.engine.erase_personal_data("order:9201", reason="asked", requested_by="dpo")
    assert not [p.name for p in keys_files() if key in p.read_bytes()]
    with sqlite3.connect(vault.path) as db:
        assert db.execute("SELECT entity, reason, requested_by FROM erasures").fetchall() == [
            ("order:9201", "asked", "dpo")
        ]
    assert (await shop.data("order:9201"))["recipient_address"] == "[erased]"

    await shop.send("order.address_updated", "order:9201")
    [*_, detail] = [
        h for h in await shop.engine.history("order:9201") if h["type"] == "order.detail_fetched"
    ]
    assert detail["payload"]["recipient_address"] is None
    assert detail["payload"]["buyer_email"] is None
    assert (await shop.data("order:9201"))["recipient_address"] == "[erased]"
    with pytest.raises(ErasureRefused):
        await shop.engine.erase_personal_data("order:404", reason="x", requested_by="y")
    with pytest.raises(ErasureRefused):
        await shop.engine.erase_personal_data(SHOP, reason="x", requested_by="y")


async def test_sec3_an_order_body_refused_as_a_dead_letter_keeps_no_personal_data(shop):
    """SEC-3: a refused order detail is kept as a dead letter without the buyer's data."""
    body = {
        "id": "9301",
        "status": "AWAITING_SHIPMENT",
        "create_time": "not a time",
        "update_time": 1,
    }
    buyer(body, "erased")
    receipt = await shop.engine.publish(
        {
            "event_id": "bad-detail",
            "type": "order.detail_fetched",
            "source": "tiktok",
            "entity": "order:9301",
            "payload": body,
        }
    )
    assert receipt.outcome == "dead_letter"
    [letter] = await shop.engine.dead_letters("order:9301")
    assert "[redacted]" in letter.raw
    assert not [m for m in MARKERS["erased"] if m in letter.raw]


class RecordingShoplazza:
    """Stands in for ShoplazzaClient: keeps each request body, knows no order yet."""

    def __init__(self) -> None:
        self.bodies: list[tuple[str, str, dict | None]] = []

    async def call(self, method: str, path: str, **kwargs) -> dict:
        self.bodies.append((method, path, kwargs.get("body")))
        if method == "GET":
            return {"orders": []}
        return {"order": {"id": "S1", "created_at": "2026-01-01T00:00:00Z", "line_items": []}}


def create_command(order: str, address) -> OutboxCommand:
    return OutboxCommand(
        id=1,
        entity=order,
        type="create_shoplazza_order",
        payload={
            "order": order,
            "order_id": order.split(":")[1],
            "source_name": "TikTok Shop",
            "tags": ["TikTok Shop"],
            "financial_status": "paid",
            "line_items": [],
            "tiktok_create_time": 1,
            "recipient_address": address,
        },
        idempotency_key=f"{order}:create:1",
        attempts=0,
    )


async def test_sec3_the_shoplazza_command_opens_the_address_and_sends_none_once_erased():
    """SEC-3: the create command sends the opened address; once the order is
    erased it sends none, and a key that is missing parks the command."""
    vault = Vault(":memory:")
    client = RecordingShoplazza()
    commands = ShoplazzaCommands(client, vault)  # type: ignore[arg-type]
    name = MARKERS["kept"][0]
    sealed = vault.seal("order:1", "recipient_address", {"name": name}, now=1.0)

    await commands.create_order(create_command("order:1", sealed))
    assert client.bodies[-1][2]["order"]["shipping_address"] == {"name": name}

    vault.erase("order:1", reason="asked", requested_by="dpo", now=2.0)
    await commands.create_order(create_command("order:1", sealed))
    assert client.bodies[-1][2]["order"]["shipping_address"] is None
    update = create_command("order:1", sealed)
    update.payload["shoplazza_order_id"] = "S1"
    sent = len(client.bodies)
    assert await commands.update_address(update) == []
    assert len(client.bodies) == sent, "nothing to send once erased"

    other = Vault(":memory:")  # a keys file lost: the value cannot open
    lost = other.seal("order:2", "recipient_address", {"name": name}, now=1.0)
    with pytest.raises(CommandFailed, match="cannot be opened"):
        await commands.create_order(create_command("order:2", lost))
    vault.close()
    other.close()
