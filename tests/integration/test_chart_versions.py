"""Versions in the log (ENG-9) on real SQLite files: entities stay on the
chart version they started on, every event row records the version that
applied it, `check` replays each with that version, and `migrate` moves
entities to a newer version as logged events of their own."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from engine import ChartSet, Engine, FakeClock
from engine.log_reader import ChartVersionNotInstalled
from engine.replay import check
from engine.settings import EngineSettings
from engine.store.schema import MIGRATIONS
from engine.store.sqlite import SQLiteStore
from engine.upgrades import UPGRADE_EVENT
from engine.version_migration import plan_moves, publish_moves
from tests.fixtures.versioned_parcel import V1, V2, package

V1_ONLY = ChartSet.load([package(V1)])
BOTH = ChartSet.load([package()])
V2_ONLY = ChartSet.load([package(V2)])
QUIET = EngineSettings(run_timers=False, run_outbox=False)


async def open_engine(db: Path, charts: ChartSet, clock: FakeClock) -> Engine:
    return await Engine.open(db, charts=charts, clock=clock, settings=QUIET)


async def publish(engine: Engine, entity: str, event_type: str, **payload: Any) -> Any:
    number = len(await engine.history(entity))
    return await engine.publish(
        {
            "event_id": f"{entity}:{event_type}:{number}",
            "type": event_type,
            "source": "test",
            "entity": entity,
            "payload": payload,
        }
    )


async def logged_versions(db: Path) -> list[tuple[str, str, int | None]]:
    store = await SQLiteStore.open_readonly(db)
    try:
        rows = await store.fetchall("SELECT entity, type, chart_version FROM events ORDER BY seq")
        return [tuple(row) for row in rows]
    finally:
        await store.close()


async def checked(db: Path, charts: ChartSet) -> str | None:
    """`check`'s verdict: None when the log replays to the stored state."""
    store = await SQLiteStore.open_readonly(db)
    try:
        result = await check(store, charts)
        return result.divergence.describe() if result.divergence else None
    finally:
        await store.close()


async def write_v1_log(db: Path, clock: FakeClock) -> None:
    """Parcels under version 1 alone: one packed, one shipped, one just created."""
    engine = await open_engine(db, V1_ONLY, clock)
    try:
        await publish(engine, "parcel:1", "parcel.pack", weight_kg=1.25)
        await publish(engine, "parcel:2", "parcel.pack", weight_kg=0.5)
        await publish(engine, "parcel:2", "parcel.ship", tracking_number="TN2")
        await publish(engine, "parcel:3", "parcel.note", text="fragile")
    finally:
        await engine.stop()


async def migrate(db: Path, charts: ChartSet, clock: FakeClock, **which: Any) -> list[Any]:
    engine = await open_engine(db, charts, clock)
    try:
        moves = await plan_moves(engine.store, charts, **which)
        await publish_moves(engine, moves)
        return moves
    finally:
        await engine.stop()


async def test_a_v1_log_checks_after_v2_is_installed_and_after_migrate(
    db_path: Path, clock: FakeClock
) -> None:
    """The acceptance: `check` passes on a version 1 log with version 2
    installed; entities keep stepping on version 1 until migrated, new ones
    start on version 2; migrate moves them and `check` still passes."""
    await write_v1_log(db_path, clock)
    assert await checked(db_path, BOTH) is None

    engine = await open_engine(db_path, BOTH, clock)
    try:
        # parcel:1 is still on version 1: it ships from "packed".
        shipped = await publish(engine, "parcel:1", "parcel.ship", tracking_number="TN1")
        assert (shipped.from_state, shipped.to_state) == ("packed", "shipped")
        # A new parcel starts on version 2.
        boxed = await publish(engine, "parcel:9", "parcel.pack", weight_kg=2.0)
        assert boxed.to_state == "boxed"
        new = await engine.entity("parcel:9")
        assert new is not None and (new.chart_version, new.data) == (2, {"weight_g": 2000})
        await publish(engine, "parcel:4", "parcel.note", text="made under v2")
    finally:
        await engine.stop()
    assert await checked(db_path, BOTH) is None

    # Another parcel packed under version 1 is still "packed" when it moves.
    engine = await open_engine(db_path, V1_ONLY, clock)
    try:
        await publish(engine, "parcel:5", "parcel.pack", weight_kg=0.75)
    finally:
        await engine.stop()

    moves = await migrate(db_path, BOTH, clock)
    assert [(m.from_version, m.to_version, sorted(m.entities), m.outcomes) for m in moves] == [
        (1, 2, ["parcel:1", "parcel:2", "parcel:3", "parcel:5"], {"transitioned": 4})
    ]
    engine = await open_engine(db_path, BOTH, clock)
    try:
        moved = await engine.entity("parcel:5")
        assert moved is not None
        assert (moved.state, moved.chart_version, moved.data) == ("boxed", 2, {"weight_g": 750})
        history = await engine.history("parcel:5")
        assert history[-1]["type"] == UPGRADE_EVENT
        assert (history[-1]["from_state"], history[-1]["to_state"]) == ("packed", "boxed")
        assert history[-1]["reason"] == "chart parcel version 1 -> 2"
        # After the move it steps on version 2: ships from "boxed".
        shipped = await publish(engine, "parcel:5", "parcel.ship", tracking_number="TN5")
        assert (shipped.from_state, shipped.to_state) == ("boxed", "shipped")
    finally:
        await engine.stop()

    versions = await logged_versions(db_path)
    assert ("parcel:5", "parcel.pack", 1) in versions
    assert ("parcel:5", UPGRADE_EVENT, 2) in versions
    assert ("parcel:5", "parcel.ship", 2) in versions
    assert ("parcel:9", "parcel.pack", 2) in versions
    assert await checked(db_path, BOTH) is None

    again = await migrate(db_path, BOTH, clock)
    assert again == [], "nothing left on version 1"


async def test_check_names_the_chart_and_version_it_is_missing(
    db_path: Path, clock: FakeClock
) -> None:
    await write_v1_log(db_path, clock)
    store = await SQLiteStore.open_readonly(db_path)
    try:
        with pytest.raises(ChartVersionNotInstalled) as missing:
            await check(store, V2_ONLY)
    finally:
        await store.close()
    assert (missing.value.chart, missing.value.version, missing.value.seq) == ("parcel", 1, 1)
    assert "version 1 of chart 'parcel' is not installed (installed: 2)" in str(missing.value)


async def test_an_entity_on_a_version_no_longer_installed_gets_an_error_not_a_guess(
    db_path: Path, clock: FakeClock
) -> None:
    await write_v1_log(db_path, clock)
    engine = await open_engine(db_path, V2_ONLY, clock)
    try:
        refused = await publish(engine, "parcel:1", "parcel.ship", tracking_number="TN1")
        assert refused.outcome == "error"
        assert "version 1 of chart 'parcel' is not installed" in (refused.reason or "")
        kept = await engine.entity("parcel:1")
        assert kept is not None and (kept.state, kept.chart_version) == ("packed", 1)
    finally:
        await engine.stop()


async def test_a_dry_run_plans_and_to_picks_the_version(db_path: Path, clock: FakeClock) -> None:
    await write_v1_log(db_path, clock)
    store = await SQLiteStore.open(db_path)
    try:
        planned = await plan_moves(store, BOTH, chart="parcel", to=2)
        assert [(m.chart, m.from_version, len(m.entities)) for m in planned] == [("parcel", 1, 3)]
        assert await plan_moves(store, BOTH, chart="parcel", to=1) == []
        assert await store.count("events") == 4, "planning publishes nothing"
    finally:
        await store.close()


# The columns a database had before versions were recorded.
OLD_EVENT_COLUMNS = (
    "seq, event_id, type, source, entity, chart, occurred_at, received_at, payload,"
    " outcome, from_state, to_state, reason"
)
OLD_ENTITY_COLUMNS = "key, kind, chart, state, data, version, last_seq, updated_at"


def write_old_schema_copy(source: Path, old: Path) -> None:
    """``source``'s log and entities in a file of the schema before versions."""
    with sqlite3.connect(old) as db:
        db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        versions = next(i for i, m in enumerate(MIGRATIONS) if "ADD COLUMN chart_version" in m)
        for version, migration in enumerate(MIGRATIONS[:versions], start=1):
            db.executescript(migration)
            db.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
        db.execute("ATTACH DATABASE ? AS source", (str(source),))
        db.execute(
            f"INSERT INTO events ({OLD_EVENT_COLUMNS})"
            f" SELECT {OLD_EVENT_COLUMNS} FROM source.events"
        )
        db.execute(
            f"INSERT INTO entities ({OLD_ENTITY_COLUMNS})"
            f" SELECT {OLD_ENTITY_COLUMNS} FROM source.entities"
        )
        db.commit()
        db.execute("DETACH DATABASE source")


async def test_a_database_of_the_previous_schema_opens_checks_as_version_1_and_migrates(
    tmp_path: Path, clock: FakeClock
) -> None:
    source, old = tmp_path / "source.db", tmp_path / "old.db"
    await write_v1_log(source, clock)
    write_old_schema_copy(source, old)
    assert "chart_version" not in {
        row[1] for row in sqlite3.connect(old).execute("PRAGMA table_info(events)")
    }

    # A writing open brings the schema up to date (a read never upgrades a file).
    await (await SQLiteStore.open(old)).close()
    assert await checked(old, BOTH) is None, "rows without a version replay as version 1"
    versions = await logged_versions(old)
    assert {version for _entity, _type, version in versions} == {None}, "the log is not rewritten"
    moves = await migrate(old, BOTH, clock)
    assert [m.outcomes for m in moves] == [{"transitioned": 3}]
    assert await checked(old, BOTH) is None
    store = await SQLiteStore.open_readonly(old)
    try:
        packed = await store.entity("parcel:1")
        assert packed is not None
        assert (packed.state, packed.chart_version, packed.data) == ("boxed", 2, {"weight_g": 1250})
    finally:
        await store.close()


async def test_the_migrate_and_check_commands(
    db_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """From the command line: a dry run says what would move and moves
    nothing; migrate moves and prints the count; `check` passes, and without
    version 1 installed it names the chart and version it needs."""
    import engine.cli.inspect_cmd
    import engine.cli.migrate_cmd
    from tests.conftest import invoke_cli

    await write_v1_log(db_path, clock)
    installed = {"charts": BOTH}
    for module in (engine.cli.migrate_cmd, engine.cli.inspect_cmd):
        monkeypatch.setattr(module, "load_charts", lambda *_: installed["charts"])

    dry = await invoke_cli("migrate", "--db", str(db_path), "--dry-run", "--json")
    assert dry.exit_code == 0, dry.output
    assert '"entities": 3' in dry.stdout and "would move" in dry.stdout
    assert [v for _e, _t, v in await logged_versions(db_path)] == [1, 1, 1, 1]

    moved = await invoke_cli("migrate", "--db", str(db_path), "--chart", "parcel")
    assert moved.exit_code == 0, moved.output
    assert "transitioned 3" in moved.stdout
    assert (await invoke_cli("migrate", "--db", str(db_path))).stdout.startswith("nothing to")
    wrong = await invoke_cli("migrate", "--db", str(db_path), "--chart", "parcel", "--to", "7")
    assert wrong.exit_code == 2 and "version 7 of chart 'parcel' is not installed" in wrong.output

    ok = await invoke_cli("check", "--db", str(db_path))
    assert ok.exit_code == 0 and ok.stdout.startswith("ok: 7 events replayed"), ok.output
    installed["charts"] = V2_ONLY
    missing = await invoke_cli("check", "--db", str(db_path))
    assert missing.exit_code == 2
    assert "version 1 of chart 'parcel' is not installed" in missing.output


def test_what_if_chart_files_replace_every_installed_version_of_their_chart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`replay --charts DIR`: a file in DIR replaces all versions of its chart,
    so an edited version 2 is not refused as a second version 2."""
    import engine.chartset
    import engine.cli.common

    monkeypatch.setattr(engine.chartset, "discover_packages", lambda: {"v": package()})
    edited = tmp_path / "parcel.yaml"
    edited.write_text(V2.read_text().replace("Boxed}", "Boxed again}", 1))
    charts = engine.cli.common.load_charts(tmp_path)
    assert sorted(charts.versions) == [("parcel", 2)]
    assert charts.by_name["parcel"].spec.states["boxed"].label == "Boxed again"
