"""Replay and debugging from the CLI: ENG-5 on real logs."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from adapters.sandbox.story import Sandboxes, play
from engine.settings import EngineSettings
from tests.channel.harness import SHOP, Channel, listing, product
from tests.conftest import invoke_cli

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def demo_db(tmp_path):
    """The database the demo story leaves behind."""
    db = tmp_path / "demo.db"
    box = await Sandboxes.start(db)
    try:
        await play(box)
    finally:
        await box.stop()
    return db


async def test_eng5_replay_json_equals_state_json_for_the_demo_log(demo_db, tmp_path):
    """ENG-5: replaying the demo's log rebuilds exactly the stored state."""
    state = await invoke_cli("state", "--db", str(demo_db), "--json")
    replayed = await invoke_cli("replay", "--db", str(demo_db), "--json")
    assert replayed.exit_code == 0, replayed.output
    assert json.loads(replayed.stdout) == json.loads(state.stdout)
    checked = await invoke_cli("check", "--db", str(demo_db))
    assert checked.exit_code == 0 and checked.stdout.startswith("ok: ")

    exported = tmp_path / "demo.jsonl"
    assert (await invoke_cli("export", "--db", str(demo_db), "--out", str(exported))).exit_code == 0
    from_file = await invoke_cli("replay", str(exported), "--json")
    assert json.loads(from_file.stdout) == json.loads(state.stdout)


async def test_eng5_replay_json_equals_state_json_for_a_domain_scenario(db_path, clock):
    """ENG-5: the same for a channel scenario's log (products, orders, timers)."""
    channel = await Channel.open(db_path, clock)
    try:
        await channel.connect()
        await channel.add_products(product("p1"), product("p2", weight=None))
        await channel.approve("p1")
        pid = await channel.tiktok_product_id("p1")
        channel.tiktok_order("9001", product_ids=(pid,))
        await channel.order_status("9001", "ON_HOLD", 100)
        await channel.advance(3 * 3600)
        await channel.order_status("9001", "AWAITING_SHIPMENT", 200)
    finally:
        await channel.engine.stop()
    state = await invoke_cli("state", "--db", str(db_path), "--json")
    replayed = await invoke_cli("replay", "--db", str(db_path), "--json")
    assert json.loads(replayed.stdout) == json.loads(state.stdout)
    assert (await invoke_cli("check", "--db", str(db_path))).exit_code == 0


async def test_eng5_check_names_exactly_the_tampered_event(demo_db):
    """ENG-5: a stored transition that the charts would not make is reported at its event."""
    with sqlite3.connect(demo_db) as conn:
        seq, event_id = conn.execute(
            "SELECT seq, event_id FROM events WHERE type = 'listing.review_result'"
            " AND to_state = 'approved.selling' ORDER BY seq LIMIT 1"
        ).fetchone()
        conn.execute("UPDATE events SET to_state = 'rejected.by_tiktok' WHERE seq = ?", (seq,))
    checked = await invoke_cli("check", "--db", str(demo_db))
    assert checked.exit_code == 1
    assert f"first divergent event: seq {seq} ({event_id})" in checked.stderr
    assert "recorded:   in_review.reviewing -> rejected.by_tiktok" in checked.stderr
    assert "recomputed: in_review.reviewing -> approved.selling" in checked.stderr


async def test_eng5_what_if_reports_the_one_product_whose_review_times_out_differently(
    db_path, clock, tmp_path
):
    """ENG-5: under a chart where a review timeout deactivates the product, only
    the product that actually timed out is reported. (Deactivated, not Rejected:
    a rejected product follows TikTok's later review results, PROD-11, and the
    poll's answer would bring it back.)"""
    channel = await Channel.open(db_path, clock)
    try:
        await channel.connect()
        await channel.add_products(product("quick"), product("slow"), product("other"))
        await channel.approve("quick")
        await channel.approve("other")
        await channel.advance(2 * 3600)  # "slow" is still in review: its poll fires
    finally:
        await channel.engine.stop()
    charts = tmp_path / "charts"
    charts.mkdir()
    shutil.copy(ROOT / "statecharts" / "product_listing.yaml", charts)
    chart = charts / "product_listing.yaml"
    chart.write_text(
        chart.read_text().replace(
            "  - event: listing.review_poll_due\n    source: in_review\n"
            "    actions: [poll_review_status]",
            "  - event: listing.review_poll_due\n    source: in_review\n    target: deactivated\n"
            "    actions: [poll_review_status]",
        )
    )
    result = await invoke_cli("replay", "--db", str(db_path), "--charts", str(charts), "--json")
    assert result.exit_code == 0, result.output
    [difference] = json.loads(result.stdout)
    assert difference["entity"] == listing("slow")
    assert difference["recorded"]["to_state"] == "in_review.reviewing"
    assert difference["recomputed"]["to_state"] == "deactivated"
    assert (difference["final_recorded"], difference["final_what_if"]) == (
        "in_review.reviewing",
        "deactivated",
    )
    human = await invoke_cli("replay", "--db", str(db_path), "--charts", str(charts))
    assert "1 entity would differ" in human.stdout


async def test_export_then_ingest_rebuilds_the_same_state_and_again_changes_nothing(
    demo_db, tmp_path
):
    exported = tmp_path / "log.jsonl"
    await invoke_cli("export", "--db", str(demo_db), "--out", str(exported))
    fresh = tmp_path / "fresh.db"
    first = await invoke_cli("ingest", "--db", str(fresh), str(exported))
    assert first.exit_code == 0 and "duplicate" not in first.stdout
    again = await invoke_cli("ingest", "--db", str(fresh), str(exported))
    count = len(exported.read_text().splitlines()) - 1
    assert again.stdout.strip() == f"ingested: duplicate {count}"
    original = json.loads((await invoke_cli("state", "--db", str(demo_db), "--json")).stdout)
    rebuilt = json.loads((await invoke_cli("state", "--db", str(fresh), "--json")).stdout)
    assert [(e["key"], e["state"]) for e in rebuilt] == [(e["key"], e["state"]) for e in original]


async def test_replay_until_a_seq_shows_the_state_at_that_point(demo_db):
    with sqlite3.connect(demo_db) as conn:
        seq = conn.execute(
            "SELECT MIN(seq) FROM events WHERE to_state = 'authorized.active'"
        ).fetchone()[0]
    before = json.loads(
        (await invoke_cli("replay", "--db", str(demo_db), "--until", str(seq - 1), "--json")).stdout
    )
    at = json.loads(
        (await invoke_cli("replay", "--db", str(demo_db), "--until", str(seq), "--json")).stdout
    )
    assert [e["state"] for e in before if e["key"] == SHOP] == ["terms_accepted"]
    assert [e["state"] for e in at if e["key"] == SHOP] == ["authorized.active"]


async def test_history_shows_events_commands_and_their_results(demo_db):
    with sqlite3.connect(demo_db) as conn:
        [order] = conn.execute(
            "SELECT key FROM entities WHERE state LIKE 'lifecycle.in_transit,%'"
        ).fetchone()
    shown = await invoke_cli("history", order, "--db", str(demo_db), "--json")
    story = json.loads(shown.stdout)
    commands = [c["type"] for e in story["events"] for c in e["commands"]]
    assert {
        "fetch_order_detail",
        "resolve_order_products",
        "create_shoplazza_order",
        "push_shipping",
    } <= set(commands)
    results = [e["type"] for e in story["events"] if e["result_of_command"]]
    assert "order.shoplazza_created" in results and "order.shipping_pushed" in results


async def test_a_file_that_is_not_a_log_is_a_clear_error(tmp_path):
    bogus = tmp_path / "x.jsonl"
    bogus.write_text('{"hello": 1}\n')
    result = await invoke_cli("replay", str(bogus))
    assert result.exit_code == 1 and "is not a channelsync event log" in result.stderr


async def test_eng5_batched_replay_agrees_with_the_streaming_api_at_every_point(demo_db):
    """ENG-5: `replay` (the batched loop the CLI and `check` use) and
    `replay_log` over `logged_events` (the per-event stream the timeline and
    what-if use) rebuild the same entities, for the whole log, for one entity,
    and up to any seq, including in the middle of a read batch."""
    from engine.chartset import ChartSet, discover_packages
    from engine.replay import logged_events, replay, replay_log
    from engine.store.sqlite import SQLiteStore

    charts = ChartSet.load(discover_packages().values())
    store = await SQLiteStore.open(demo_db)
    try:
        store_events = await store.count("events")
        for until in (1, store_events // 3, store_events // 2 + 1, None):
            for entity in (None, SHOP):
                batched = await replay(store, charts, entity=entity, until_seq=until)
                streamed = await replay_log(
                    logged_events(store, charts, entity=entity),
                    charts,
                    entity=entity,
                    until_seq=until,
                )
                assert batched.events == streamed.events
                assert {k: v.as_dict() for k, v in batched.entities.items()} == {
                    k: v.as_dict() for k, v in streamed.entities.items()
                }
        # a read batch smaller than the log: replay crosses batch boundaries
        rows = [r async for batch in store.iter_event_batches(batch=7) for r in batch]
        assert [r[0] for r in rows] == sorted(r[0] for r in rows)
        assert len(rows) == store_events
    finally:
        await store.close()


async def test_log_lines_go_to_standard_error_and_output_stays_clean(demo_db, tmp_path):
    """Log lines go to standard error, so `--json` output parses and a
    command's own output is alone on standard output, even at DEBUG, where the
    engine logs a line per event and per commit."""
    exported = tmp_path / "demo.jsonl"
    assert (await invoke_cli("export", "--db", str(demo_db), "--out", str(exported))).exit_code == 0
    fresh = tmp_path / "fresh.db"
    ingested = await invoke_cli("--log-level", "DEBUG", "ingest", "--db", str(fresh), str(exported))
    assert ingested.exit_code == 0, ingested.output
    assert ingested.stdout.startswith("ingested: ") and len(ingested.stdout.splitlines()) == 1
    assert "transitioned" in ingested.stderr and "committed" in ingested.stderr

    state = await invoke_cli("state", "--db", str(demo_db), "--json")
    replayed = await invoke_cli("--log-level", "DEBUG", "replay", "--db", str(demo_db), "--json")
    assert replayed.exit_code == 0, replayed.output
    assert json.loads(replayed.stdout) == json.loads(state.stdout)


async def test_ingest_leaves_no_work_that_a_later_serve_would_carry_out(demo_db, tmp_path):
    """ENG-6: `ingest` into a scratch database re-applies another database's
    log; the commands its events ask for were that database's work. They are
    recorded as inert, with the reason, listed by `commands`, and the outbox
    dispatcher (what `serve` runs) carries none of them out."""
    from engine.chartset import ChartSet, discover_packages
    from engine.runtime import Engine

    exported = tmp_path / "log.jsonl"
    await invoke_cli("export", "--db", str(demo_db), "--out", str(exported))
    scratch = tmp_path / "scratch.db"
    assert (await invoke_cli("ingest", "--db", str(scratch), str(exported))).exit_code == 0

    calls = []

    async def record(command):
        calls.append(command.type)

    with sqlite3.connect(demo_db) as conn:
        types = {row[0] for row in conn.execute("SELECT DISTINCT command FROM outbox")}
        carried_out = conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
    assert {"create_listing", "create_shoplazza_order", "push_shipping"} <= types
    engine = await Engine.open(
        scratch,
        charts=ChartSet.load(discover_packages().values()),
        handlers={t: record for t in types},
        settings=EngineSettings(run_timers=False, run_outbox=False),
    )
    try:
        assert await engine.outbox.run_until_idle() == 0
        inert = await engine.commands.list("inert")
    finally:
        await engine.stop()
    assert calls == []
    assert len(inert) == carried_out
    assert all(c.reason and c.reason.startswith("ingested from log.jsonl") for c in inert)

    listed = await invoke_cli("commands", "--db", str(scratch), "--json")
    assert json.loads(listed.stdout) == [], "nothing open: no work waits in the scratch database"
    retried = await invoke_cli("commands", "retry", str(inert[0].id), "--db", str(scratch))
    assert retried.exit_code == 1 and "ingested from another database's log" in retried.stderr


CRATE_CHART = """\
name: crate
entity_kind: crate
version: 1
initial: open
states:
  open: {label: Open}
  sealed: {label: Sealed, final: true}
events: [crate.seal]
transitions:
  - event: crate.seal
    source: open
    target: sealed
"""


async def database_of_an_uninstalled_chart(tmp_path: Path, chart: str, event: str) -> Path:
    """A database whose log was written by a chart package not installed here."""
    from engine import ChartPackage, ChartSet, Rules
    from engine.runtime import Engine
    from engine.sample import rules as sample_rules

    charts_dir = tmp_path / "elsewhere"
    charts_dir.mkdir()
    (charts_dir / "chart.yaml").write_text(chart)
    rules = Rules()
    if event == "crate.seal":
        rules.event("crate.seal")
    else:  # the event types are installed (the sample's), the chart is not
        rules.update(sample_rules)
    charts = ChartSet.load([ChartPackage.from_directory("elsewhere", charts_dir, rules)])
    db = tmp_path / "elsewhere.db"
    engine = await Engine.open(
        db, charts=charts, settings=EngineSettings(run_timers=False, run_outbox=False)
    )
    try:
        kind = charts.by_name[next(iter(charts.by_name))].entity_kind
        await engine.publish(engine.make_event(event, f"{kind}:1", {}, event_id="e1"))
    finally:
        await engine.stop()
    return db


@pytest.mark.parametrize("which", ["own event types", "installed event types"])
async def test_eng5_check_and_replay_name_a_chart_that_is_not_installed(tmp_path, which):
    """ENG-5: `check` and `replay` of a log whose chart is not installed exit 2
    with a sentence naming the chart and how to provide it, not a traceback."""
    if which == "own event types":
        db = await database_of_an_uninstalled_chart(tmp_path, CRATE_CHART, "crate.seal")
        chart = "crate"
    else:
        parcel = (ROOT / "engine" / "sample" / "parcel.yaml").read_text()
        box = parcel.replace("name: parcel", "name: box").replace(
            "entity_kind: parcel", "entity_kind: box"
        )
        db = await database_of_an_uninstalled_chart(tmp_path, box, "parcel.pack")
        chart = "box"
    exported = tmp_path / "elsewhere.jsonl"
    assert (await invoke_cli("export", "--db", str(db), "--out", str(exported))).exit_code == 0
    for args in (
        ("check", "--db", str(db)),
        ("replay", "--db", str(db)),
        ("replay", "--db", str(db), "--json"),
        ("replay", str(exported)),
        ("replay", str(exported), "--charts", str(ROOT / "engine" / "sample")),
    ):
        result = await invoke_cli(*args)
        assert result.exit_code == 2, (args, result.output)
        assert f"the log has events of chart {chart!r}" in result.stderr, args
        assert "Install the Python package that provides it" in result.stderr
        assert "Traceback" not in result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)
        assert result.stdout == ""


async def test_eng5_a_mid_log_export_replays_from_the_states_at_its_cut(demo_db, tmp_path):
    """ENG-5: an export that starts mid-log (`export --since`) carries the
    states of its entities at the cut, and `replay FILE` starts from them: it
    rebuilds the same states as the whole database, not states that never were."""
    with sqlite3.connect(demo_db) as conn:
        # Cut just before TikTok's last review result: that product was in
        # review at the cut, and a result means nothing to a product not sent.
        [cut] = conn.execute(
            "SELECT MAX(seq) - 1 FROM events WHERE type = 'listing.review_result'"
        ).fetchone()
    part = tmp_path / "part.jsonl"
    exported = await invoke_cli(
        "export", "--db", str(demo_db), "--since", str(cut), "--out", str(part)
    )
    assert exported.exit_code == 0, exported.output
    header, *lines = part.read_text().splitlines()
    touched = {json.loads(line)["entity"] for line in lines}
    state = json.loads((await invoke_cli("state", "--db", str(demo_db), "--json")).stdout)
    expected = [e for e in state if e["key"] in touched]
    replayed = await invoke_cli("replay", str(part), "--json")
    assert replayed.exit_code == 0, replayed.output
    assert json.loads(replayed.stdout) == expected
    base = {e["key"] for e in json.loads(header)["base"]}
    assert base and base <= touched
    assert f"after seq {cut}" in exported.stdout

    listing = next(e["key"] for e in expected if e["key"].startswith("listing:"))
    one = await invoke_cli("replay", str(part), "--entity", listing, "--json")
    assert json.loads(one.stdout) == [e for e in expected if e["key"] == listing]

    early = await invoke_cli("replay", str(part), "--until", str(cut - 1))
    assert early.exit_code == 2 and f"starts after seq {cut}" in early.stderr


async def test_eng5_a_mid_log_file_without_its_base_is_refused(demo_db, tmp_path):
    """ENG-5: a mid-log export without the states at its cut (as written before
    this version) is refused by `replay` (exit 2) instead of being replayed
    from the initial states; `ingest` refuses any mid-log file."""
    with sqlite3.connect(demo_db) as conn:
        cut = conn.execute("SELECT MAX(seq) FROM events").fetchone()[0] // 2
    part = tmp_path / "part.jsonl"
    await invoke_cli("export", "--db", str(demo_db), "--since", str(cut), "--out", str(part))
    lines = part.read_text().splitlines()
    header = json.loads(lines[0])
    old_style = tmp_path / "old.jsonl"
    old_header = {k: v for k, v in header.items() if k != "base"} | {"version": 1}
    old_style.write_text("\n".join([json.dumps(old_header), *lines[1:]]) + "\n")
    refused = await invoke_cli("replay", str(old_style), "--json")
    assert refused.exit_code == 2
    assert f"starts after seq {cut}" in refused.stderr
    assert "states that never were" in refused.stderr
    assert refused.stdout == ""

    for log in (part, old_style):
        scratch = tmp_path / f"scratch-{log.stem}.db"
        ingested = await invoke_cli("ingest", "--db", str(scratch), str(log))
        assert ingested.exit_code == 2 and "takes a whole log" in ingested.stderr
        assert not scratch.exists(), "a refused ingest creates no database"


async def test_eng5_an_event_that_no_longer_validates_is_named_not_a_traceback(
    sample_engine, db_path
):
    """ENG-5: a logged payload the installed event types refuse (a package
    older or newer than the one that logged it) exits 2 naming the event."""
    engine = sample_engine
    await engine.publish(engine.make_event("parcel.pack", "parcel:1", {}, event_id="p1"))
    await engine.publish(
        engine.make_event("parcel.note", "parcel:1", {"text": "fragile"}, event_id="n1")
    )
    with sqlite3.connect(db_path) as conn:
        [seq] = conn.execute("SELECT seq FROM events WHERE event_id = 'n1'").fetchone()
        conn.execute("UPDATE events SET payload = '{}' WHERE seq = ?", (seq,))
    for command in ("check", "replay"):
        result = await invoke_cli(command, "--db", str(db_path))
        assert result.exit_code == 2, result.output
        assert f"event seq {seq} (parcel.note on parcel:1) does not validate" in result.stderr
        assert "Traceback" not in result.output
