"""Discarding a dead letter: from the inspector's page (through the engine,
kept with who, why and when), refused twice and refused a retry afterwards,
refused by a standalone inspector while an engine holds the database."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine import Engine, FakeClock
from engine.dead_letters import DeadLetterDiscarded, DeadLetterNotFound
from engine.inspector import Attached, Detached, Presenter, build_inspector
from engine.store.sqlite import SQLiteStore
from tests.conftest import invoke_cli
from tests.integration.test_inspector import client, form_key

TELEPORT = (
    '{"event_id": "x1", "type": "parcel.teleport", "source": "api",'
    ' "entity": "parcel:9", "payload": {}}'
)
PLAIN = Presenter(show_pii=False, vault=None)
JSON = {"Accept": "application/json"}


async def test_a_letter_discarded_on_the_page_leaves_it_and_stays_on_record(
    sample_engine: Engine,
) -> None:
    await sample_engine.publish_raw(TELEPORT, "api")
    await sample_engine.publish_raw(b"not json at all", "mail")
    teleport, junk = await sample_engine.dead_letters()
    app = build_inspector(Attached(sample_engine, PLAIN))
    async with client(app) as http:
        page = (await http.get("/dead-letters")).text
        assert f'<label class="sr-only" for="letter-reason-{junk.id}">' in page
        assert f'Discard<span class="sr-only"> dead letter {junk.id}</span>' in page, (
            "a letter that cannot be retried can still be discarded"
        )
        forged = await http.post(
            f"/dead-letters/{teleport.id}/discard", data={"form_key": "guess"}, headers=JSON
        )
        assert forged.status_code == 403 and len(await sample_engine.dead_letters()) == 2
        key = {"form_key": form_key(page)}
        done = await http.post(
            f"/dead-letters/{teleport.id}/discard",
            data={**key, "reason": "  a test from the warehouse  "},
            headers=JSON,
        )
        assert done.json() == {"ok": True, "message": f"dead letter {teleport.id} discarded"}
        after = (await http.get("/dead-letters")).text
        assert f'id="letter-{teleport.id}"' not in after and f'id="letter-{junk.id}"' in after
        entity_page = (await http.get("/entity", params={"key": "parcel:9"})).text
        assert "by inspector: a test from the warehouse" in entity_page, "its history shows it"
        retried = await http.post(f"/dead-letters/{teleport.id}/retry", data=key, headers=JSON)
        assert retried.status_code == 409
        assert (
            "discarded" in retried.json()["message"] and "not retried" in retried.json()["message"]
        )
        again = await http.post(f"/dead-letters/{teleport.id}/discard", data=key, headers=JSON)
        assert again.status_code == 409 and "was discarded at" in again.json()["message"]
    kept = await sample_engine.store.dead_letter(teleport.id)
    assert kept is not None and (kept.discarded_by, kept.discard_reason) == (
        "inspector",
        "a test from the warehouse",
    )
    assert kept.discarded_at == sample_engine.clock.now()
    assert await sample_engine.history("parcel:9") == [], "nothing was sent to the chart"


async def test_the_engine_refuses_an_unknown_or_discarded_letter(sample_engine: Engine) -> None:
    await sample_engine.publish_raw(TELEPORT, "api")
    [letter] = await sample_engine.dead_letters()
    with pytest.raises(DeadLetterNotFound):
        await sample_engine.discard_dead_letter(letter.id + 1, actor="ana")
    with pytest.raises(DeadLetterNotFound):
        await sample_engine.discard_dead_letter(2**70, actor="ana")
    done = await sample_engine.discard_dead_letter(letter.id, actor="ana", reason="seen")
    assert not done.open and done.discarded_by == "ana"
    with pytest.raises(DeadLetterDiscarded, match="by ana: seen"):
        await sample_engine.discard_dead_letter(letter.id, actor="bo")
    await sample_engine.publish_raw(TELEPORT, "api")  # at the discard's instant: not newer
    assert await sample_engine.dead_letters() == []
    clock = sample_engine.clock
    assert isinstance(clock, FakeClock)
    clock.advance(1.0)
    await sample_engine.publish_raw(TELEPORT, "api")  # the same input later: open again
    [reopened] = await sample_engine.dead_letters()
    assert reopened.id == letter.id and reopened.count == 3


async def test_a_standalone_inspector_refuses_while_an_engine_holds_the_database(
    sample_engine: Engine, db_path: Path
) -> None:
    await sample_engine.publish_raw(TELEPORT, "api")
    [letter] = await sample_engine.dead_letters()
    store = await SQLiteStore.open_readonly(db_path)
    try:
        backend = Detached(
            store,
            sample_engine.charts,
            PLAIN,
            open_writable=lambda: SQLiteStore.open(db_path),
            clock=sample_engine.clock,
        )
        async with client(build_inspector(backend)) as http:
            key = {"form_key": form_key((await http.get("/dead-letters")).text)}
            busy = await http.post(f"/dead-letters/{letter.id}/discard", data=key, headers=JSON)
            assert busy.status_code == 409
            assert "act on it from that process's inspector" in busy.json()["message"]
            assert [d.id for d in await store.dead_letters()] == [letter.id], "still open"
            await sample_engine.stop()  # nobody holds it now: an engine opens for the action
            done = await http.post(
                f"/dead-letters/{letter.id}/discard", data={**key, "reason": "old"}, headers=JSON
            )
            assert done.json()["ok"] is True
        assert await store.dead_letters() == []
        [kept] = await store.dead_letters(include_discarded=True)
        assert (kept.discarded_by, kept.discard_reason) == ("inspector", "old")
    finally:
        await store.close()


async def test_the_cli_discards_a_letter_once_beside_a_running_engine(
    sample_engine: Engine, db_path: Path
) -> None:
    await sample_engine.publish_raw(TELEPORT, "api")
    [letter] = await sample_engine.dead_letters()
    base = ["dead-letters", "discard", str(letter.id), "--db", str(db_path)]
    done = await invoke_cli(*base, "--reason", "no teleports here", "--by", "ana", "--json")
    assert done.exit_code == 0, done.output
    shown = json.loads(done.output)
    assert (shown["id"], shown["discarded_by"], shown["discard_reason"]) == (
        letter.id,
        "ana",
        "no teleports here",
    )
    assert await sample_engine.dead_letters() == [], "the running engine sees it discarded"
    twice = await invoke_cli(*base, "--by", "bo")
    assert twice.exit_code == 1 and "by ana: no teleports here" in twice.output
    missing = await invoke_cli("dead-letters", "discard", "999", "--db", str(db_path))
    assert missing.exit_code == 2 and "no dead letter with id 999" in missing.output
    story = await invoke_cli("history", "parcel:9", "--db", str(db_path), "--json")
    assert "no teleports here" in story.output, "the entity's history shows the discard"
    listing = ["state", "--db", str(db_path), "--dead-letters", "--json"]
    assert json.loads((await invoke_cli(*listing)).stdout) == [], "open ones only"
    [kept] = json.loads((await invoke_cli(*listing, "--include-discarded")).stdout)
    assert kept["id"] == letter.id and "by ana: no teleports here" in kept["discarded"]
