"""The engine end to end on a real SQLite file: ENG-2, ENG-3, ENG-4, ENG-5, ENG-7."""

from __future__ import annotations

import asyncio
import json
import random

from engine import Engine
from engine.replay import check, replay
from engine.settings import EngineSettings
from tests.conftest import invoke_cli
from tests.parcel_model import EVENT_TYPES, ParcelModel, payload_for


async def test_eng2_eng4_100k_events_for_10k_entities_match_an_independent_model(
    db_path, clock, sample_charts
):
    """100,000 events over 10,000 entities, published concurrently: the log holds
    every one and each entity ends where the hand-written model says."""
    rng = random.Random(7)
    engine = await Engine.open(
        db_path,
        charts=sample_charts,
        clock=clock,
        settings=EngineSettings(run_timers=False, run_outbox=False),
    )
    models: dict[str, ParcelModel] = {}
    events = []
    for n in range(100_000):
        key = f"parcel:{rng.randrange(10_000)}"
        event_type = rng.choice(EVENT_TYPES) if n >= 10_000 else "parcel.pack"
        payload = payload_for(event_type, n)
        models.setdefault(key, ParcelModel()).apply(event_type, payload)
        events.append(engine.make_event(event_type, key, payload, event_id=f"ev-{n}"))
    futures = [await engine.submit(e) for e in events]
    receipts = await asyncio.gather(*futures)
    assert len({r.seq for r in receipts}) == 100_000
    assert await engine.store.count("events") == 100_000
    stored = {e.key: e for e in await engine.entities()}
    changed = {k: m for k, m in models.items() if m.version > 0}
    assert set(stored) == set(changed)
    for key, model in changed.items():
        entity = stored[key]
        assert (entity.state, entity.data, entity.version) == (
            model.state,
            model.data,
            model.version,
        ), key
    report = await check(engine.store, sample_charts)
    assert report.divergence is None and report.events == 100_000
    await engine.stop()


async def test_eng4_one_entitys_events_apply_in_publish_order(sample_engine):
    """ENG-4: one entitys events apply in publish order."""
    futures = [
        await sample_engine.submit(
            sample_engine.make_event("parcel.note", "parcel:7", {"text": str(i)}, event_id=f"n{i}")
        )
        for i in range(500)
    ]
    await asyncio.gather(*futures)
    entity = await sample_engine.entity("parcel:7")
    assert entity.data["notes"] == [str(i) for i in range(500)]


async def test_eng2_duplicate_event_id_is_recorded_and_changes_nothing(sample_engine):
    """ENG-2: duplicate event id is recorded and changes nothing."""
    event = sample_engine.make_event("parcel.pack", "parcel:1", {"weight_kg": 1.0}, event_id="same")
    first = await sample_engine.publish(event)
    before = await sample_engine.entity("parcel:1")
    second = await sample_engine.publish(event)
    assert first.outcome == "transitioned" and second.outcome == "duplicate"
    assert await sample_engine.entity("parcel:1") == before
    assert await sample_engine.store.count("events") == 1
    assert await sample_engine.store.duplicate_count("same") == 1


async def test_eng2_duplicates_inside_one_batch_are_caught(sample_engine):
    """ENG-2: duplicates inside one batch are caught."""
    event = sample_engine.make_event("parcel.note", "parcel:1", {"text": "x"}, event_id="twice")
    receipts = await asyncio.gather(*[await sample_engine.submit(event) for _ in range(5)])
    assert sorted(r.outcome for r in receipts) == ["duplicate"] * 4 + ["transitioned"]
    assert (await sample_engine.entity("parcel:1")).data["notes"] == ["x"]


async def test_eng3_malformed_and_not_allowed_events_are_kept_and_visible(sample_engine, db_path):
    """ENG-3: A malformed event becomes a dead letter, a not-allowed one is logged as
    ignored; the engine keeps running, and `channelsync state` shows both."""
    bad = await sample_engine.publish_raw(
        b'{"event_id": "b1", "type": "parcel.pack", '
        b'"source": "test", "entity": "parcel:9", '
        b'"payload": {"weight_kg": "heavy"}}',
        "test",
    )
    assert bad.outcome == "dead_letter" and "weight_kg" in bad.reason
    not_json = await sample_engine.publish_raw(b"{not json", "test")
    assert not_json.outcome == "dead_letter"
    refused = await sample_engine.publish(
        sample_engine.make_event("parcel.deliver", "parcel:9", event_id="d1")
    )
    assert refused.outcome == "ignored"
    assert refused.reason == "parcel.deliver is not allowed in state created"
    ok = await sample_engine.publish(
        sample_engine.make_event("parcel.pack", "parcel:9", {"weight_kg": 2}, event_id="p1")
    )
    assert ok.outcome == "transitioned", "the engine kept running"

    shown = await invoke_cli("state", "--db", str(db_path), "--entity", "parcel:9", "--json")
    assert shown.exit_code == 0, shown.output
    [record] = json.loads(shown.stdout)
    assert record["state"] == "packed"
    assert [(h["event_id"], h["outcome"]) for h in record["history"]] == [
        ("d1", "ignored"),
        ("p1", "transitioned"),
    ]
    assert record["history"][0]["reason"] == "parcel.deliver is not allowed in state created"
    assert "weight_kg" in record["dead_letters"][0]["error"]
    letters = await invoke_cli("state", "--db", str(db_path), "--dead-letters", "--json")
    assert len(json.loads(letters.stdout)) == 2
    assert any(d["raw"] == "{not json" for d in json.loads(letters.stdout))


async def test_eng3_unknown_event_type_and_unknown_entity_kind_are_dead_letters(sample_engine):
    """ENG-3: unknown event type and unknown entity kind are dead letters."""
    unknown_type = await sample_engine.publish(
        {
            "event_id": "u1",
            "type": "parcel.teleport",
            "source": "t",
            "entity": "parcel:1",
            "payload": {},
        }
    )
    assert (
        unknown_type.outcome == "dead_letter"
        and "unknown event type 'parcel.teleport'" in unknown_type.reason
    )
    letters = await sample_engine.dead_letters()
    assert len(letters) == 1 and letters[0].entity == "parcel:1"


async def test_state_json_lists_key_chart_state_data_version(sample_engine, db_path):
    await sample_engine.publish(
        sample_engine.make_event("parcel.pack", "parcel:1", {"weight_kg": 1}, event_id="a")
    )
    shown = await invoke_cli("state", "--db", str(db_path), "--json")
    assert json.loads(shown.stdout) == [
        {
            "key": "parcel:1",
            "chart": "parcel",
            "state": "packed",
            "data": {"weight_kg": 1.0},
            "version": 1,
        }
    ]


async def test_state_on_a_missing_database_is_a_clear_error(tmp_path):
    shown = await invoke_cli("state", "--db", str(tmp_path / "nope.db"))
    assert shown.exit_code == 1 and "no database at" in shown.stderr


async def test_eng7_timers_fire_from_the_injected_clock_and_survive_a_restart(
    db_path, clock, sample_charts
):
    engine = await Engine.open(
        db_path,
        charts=sample_charts,
        clock=clock,
        settings=EngineSettings(run_timers=False, run_outbox=False),
    )
    await engine.publish(engine.make_event("parcel.pack", "parcel:1", {}, event_id="p1"))
    await engine.publish(engine.make_event("parcel.pack", "parcel:2", {}, event_id="p2"))
    await engine.publish(engine.make_event("parcel.cancel", "parcel:2", {}, event_id="c2"))
    clock.advance(3599)
    assert await engine.fire_due_timers() == 0
    await engine.stop()

    restarted = await Engine.open(
        db_path,
        charts=sample_charts,
        clock=clock,
        settings=EngineSettings(run_timers=False, run_outbox=False),
    )
    clock.advance(2)
    assert await restarted.fire_due_timers() == 1, "parcel:2's timer was cancelled on leaving"
    assert (await restarted.entity("parcel:1")).state == "overdue"
    assert await restarted.fire_due_timers() == 0, "a fired timer is gone"
    await restarted.stop()


async def test_eng7_a_timer_fired_twice_applies_once(sample_engine, clock):
    """ENG-7: a timer fired twice applies once."""
    await sample_engine.publish(
        sample_engine.make_event("parcel.pack", "parcel:1", {}, event_id="p1")
    )
    clock.advance(7200)
    [(entity, name, due_at, event_type, event_id)] = await sample_engine.store.timers()
    again = sample_engine.make_event(
        event_type, entity, {"timer": name, "due_at": due_at}, event_id=event_id, source="timer"
    )
    await sample_engine.fire_due_timers()
    receipt = await sample_engine.publish(again)
    assert receipt.outcome == "duplicate"
    assert (await sample_engine.entity("parcel:1")).version == 2


async def test_eng5_replay_rebuilds_state_and_check_names_a_tampered_event(
    sample_engine, sample_charts
):
    for n, (t, p) in enumerate(
        [
            ("parcel.pack", {"weight_kg": 1}),
            ("parcel.note", {"text": "a"}),
            ("parcel.ship", {"tracking_number": "T"}),
            ("parcel.deliver", {}),
        ]
    ):
        await sample_engine.publish(sample_engine.make_event(t, "parcel:1", p, event_id=f"e{n}"))
    rebuilt = await replay(sample_engine.store, sample_charts)
    assert rebuilt.entities["parcel:1"] == await sample_engine.entity("parcel:1")
    assert (await check(sample_engine.store, sample_charts)).divergence is None

    await sample_engine.store.execute_write(
        "UPDATE events SET to_state = 'cancelled' WHERE event_id = 'e2'"
    )
    report = await check(sample_engine.store, sample_charts)
    assert report.divergence is not None and report.divergence.event_id == "e2"
    assert report.divergence.state_before == "packed"


async def test_eng5_check_notices_a_stored_entity_that_disagrees(sample_engine, sample_charts):
    """ENG-5: check notices a stored entity that disagrees."""
    await sample_engine.publish(
        sample_engine.make_event("parcel.pack", "parcel:1", {}, event_id="e")
    )
    await sample_engine.store.execute_write("UPDATE entities SET state = 'shipped'")
    report = await check(sample_engine.store, sample_charts)
    assert report.divergence.entity == "parcel:1" and report.divergence.seq is None


async def test_eng4_a_full_queue_applies_backpressure_and_loses_nothing(
    db_path, clock, sample_charts
):
    engine = await Engine.open(
        db_path,
        charts=sample_charts,
        clock=clock,
        settings=EngineSettings(
            run_timers=False, run_outbox=False, queue_size=8, partitions=2, max_batch=4
        ),
    )
    receipts = await asyncio.gather(
        *[
            engine.publish(
                engine.make_event(
                    "parcel.note", f"parcel:{n % 3}", {"text": str(n)}, event_id=f"n{n}"
                )
            )
            for n in range(300)
        ]
    )
    assert {r.outcome for r in receipts} == {"transitioned"}
    assert await engine.store.count("events") == 300
    await engine.stop()


async def test_eng2_eng4_publish_many_returns_each_events_receipt_in_order(sample_engine):
    """ENG-2/ENG-4 for the bulk path: receipts come back in the order given, one
    entity's events apply in that order, a repeated id is a duplicate (ids are
    global: also when sent for another entity, through another partition), and
    a malformed event in the middle becomes a dead letter, disturbing nothing."""
    make = sample_engine.make_event
    events = [
        make("parcel.pack", "parcel:a", {"weight_kg": 1.0}, event_id="a1"),
        make("parcel.pack", "parcel:b", {"weight_kg": 2.0}, event_id="b1"),
        {"event_id": "bad", "type": "parcel.pack", "entity": "no kind", "source": "t"},
        *[
            make("parcel.note", "parcel:a", {"text": str(i)}, event_id=f"a-n{i}")
            for i in range(300)
        ],
        make("parcel.pack", "parcel:a", {"weight_kg": 9.0}, event_id="a1"),  # a repeat
        make("parcel.note", "parcel:b", {"text": "same id, other parcel"}, event_id="a-n0"),
        make("parcel.ship", "parcel:b", {"tracking_number": "1Z"}, event_id="b2"),
    ]
    receipts = await sample_engine.publish_many(events)

    assert [(r.event_id, r.outcome) for r in receipts[:3]] == [
        ("a1", "transitioned"),
        ("b1", "transitioned"),
        (None, "dead_letter"),
    ]
    assert [r.event_id for r in receipts[3:303]] == [f"a-n{i}" for i in range(300)]
    assert receipts[303].outcome == "duplicate" and receipts[303].entity == "parcel:a"
    assert (receipts[304].entity, receipts[304].outcome) == ("parcel:b", "duplicate")
    assert (receipts[305].event_id, receipts[305].to_state) == ("b2", "shipped")
    a = await sample_engine.entity("parcel:a")
    assert a.data["notes"] == [str(i) for i in range(300)]
    assert a.data["weight_kg"] == 1.0
    assert len(await sample_engine.dead_letters()) == 1


async def test_eng2_a_state_change_then_self_transitions_in_one_commit_store_the_new_state(
    sample_engine,
):
    """ENG-2: an entity's row is written once per commit, without its state
    columns when only self-transitions happened; a state change earlier in the
    same commit must still reach the stored row."""
    make = sample_engine.make_event
    await sample_engine.publish_many(
        [make("parcel.pack", "parcel:s", {"weight_kg": 1.0}, event_id="s0")]
        + [make("parcel.note", "parcel:s", {"text": str(i)}, event_id=f"s{i}") for i in (1, 2)]
    )
    await sample_engine.publish(make("parcel.note", "parcel:s", {"text": "3"}, event_id="s3"))
    await sample_engine.publish_many(
        [
            make("parcel.note", "parcel:s", {"text": "4"}, event_id="s4"),
            make("parcel.ship", "parcel:s", {"tracking_number": "1Z9"}, event_id="s5"),
            make("parcel.note", "parcel:s", {"text": "6"}, event_id="s6"),
        ]
    )
    stored = await sample_engine.entity("parcel:s")
    assert (stored.state, stored.version) == ("shipped", 7)
    assert stored.data["notes"] == ["1", "2", "3", "4", "6"]
    assert [e.key for e in await sample_engine.entities(state="shipped")] == ["parcel:s"]
    assert await sample_engine.entities(state="packed") == []
