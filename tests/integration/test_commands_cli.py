"""OPS: operators see stuck outbox work with its reason and act on it by id,
from the CLI (`channelsync commands`) and the library (`engine.commands`)."""

from __future__ import annotations

import json
import time

import pytest

from engine import CommandFailed, CommandHeld, Engine, RetryLater
from engine.outbox import OutboxDispatcher, retry_parked
from engine.outbox_admin import CommandActionRefused, CommandNotFound
from engine.settings import EngineSettings
from tests.conftest import invoke_cli


async def ship(engine: Engine, parcel: str) -> None:
    await engine.publish(engine.make_event("parcel.pack", parcel, {}, event_id=f"{parcel}-pack"))
    await engine.publish(
        engine.make_event(
            "parcel.ship", parcel, {"tracking_number": "T1"}, event_id=f"{parcel}-ship"
        )
    )


def dispatcher(engine: Engine, handler) -> OutboxDispatcher:
    return OutboxDispatcher(
        engine.store, {"notify_buyer": handler}, engine.publish, engine.clock, max_attempts=3
    )


async def stuck_work(engine: Engine) -> dict[str, int]:
    """parcel:1 refused for good (parked), parcel:2 held, parcel:3 waiting out a
    rate limit, parcel:4 done. Returns each parcel's command id."""
    for n in range(1, 5):
        await ship(engine, f"parcel:{n}")

    async def handler(command):
        if command.entity == "parcel:1":
            raise CommandFailed("tracking number refused")
        if command.entity == "parcel:2":
            raise CommandHeld("authorization inactive", hold_key="shop:1")
        if command.entity == "parcel:3":
            raise RetryLater("rate limited", after=60)

    await dispatcher(engine, handler).run_once()
    return {c.entity: c.id for c in await engine.commands.list("all")}


async def listed(db, *options: str) -> list[dict]:
    result = await invoke_cli("commands", "--db", str(db), "--json", *options)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


async def test_ops_commands_lists_open_work_with_status_reason_and_next_attempt(
    sample_engine, db_path, clock
):
    """OPS-1: `commands` lists pending, held and parked commands with their
    reasons; the next attempt is an ISO 8601 time; done work is not shown."""
    ids = await stuck_work(sample_engine)
    rows = {r["entity"]: r for r in await listed(db_path)}
    assert set(rows) == {"parcel:1", "parcel:2", "parcel:3"}
    parked, held, waiting = rows["parcel:1"], rows["parcel:2"], rows["parcel:3"]
    assert (parked["id"], parked["status"], parked["reason"]) == (
        ids["parcel:1"],
        "parked",
        "tracking number refused",
    )
    assert (held["status"], held["reason"], held["hold_key"]) == (
        "held",
        "authorization inactive",
        "shop:1",
    )
    assert waiting["status"] == "pending" and waiting["attempts"] == 1
    assert waiting["reason"] == "RetryLater: rate limited"
    expected = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(clock.now() + 60))
    assert waiting["next_attempt_at"] == expected
    assert parked["next_attempt_at"] is None and held["next_attempt_at"] is None
    assert parked["type"] == "notify_buyer"
    assert parked["idempotency_key"] == "parcel:1-ship#0:notify_buyer"

    table = await invoke_cli("commands", "--db", str(db_path))
    assert table.exit_code == 0
    assert f"#{ids['parcel:1']} parked: tracking number refused" in table.stdout
    assert f"#{ids['parcel:2']} held: authorization inactive" in table.stdout
    assert expected in table.stdout


async def test_ops_status_filters_take_any_case_and_failed_means_failed_and_not_done(
    sample_engine, db_path
):
    """OPS-1: `--status` filters case-insensitively; `failed` is every command
    whose last attempt failed (parked, or pending a retry)."""
    await stuck_work(sample_engine)
    assert [r["entity"] for r in await listed(db_path, "--status", "Parked")] == ["parcel:1"]
    assert [r["entity"] for r in await listed(db_path, "--status", "HELD")] == ["parcel:2"]
    assert [r["entity"] for r in await listed(db_path, "--status", "failed")] == [
        "parcel:1",
        "parcel:3",
    ]
    assert [r["entity"] for r in await listed(db_path, "--status", "done")] == ["parcel:4"]
    assert len(await listed(db_path, "--status", "all")) == 4


async def test_ops_an_unknown_status_exits_2_naming_the_valid_ones(sample_engine, db_path):
    """OPS-1: a status no command can have is an error, not an empty list."""
    result = await invoke_cli("commands", "--db", str(db_path), "--status", "stuck")
    assert result.exit_code == 2
    assert "unknown status 'stuck'" in result.stderr
    for status in ("pending", "held", "parked", "failed", "done", "discarded", "inert"):
        assert status in result.stderr


async def test_ops_retry_by_id_runs_a_parked_command_again_with_the_same_key(
    sample_engine, db_path
):
    """OPS-2: `commands retry ID` puts a parked command back in the queue; it
    runs again under its own idempotency key, and the retry is recorded with
    who, why and when."""
    ids = await stuck_work(sample_engine)
    command_id = ids["parcel:1"]
    result = await invoke_cli(
        "commands", "retry", str(command_id), "--db", str(db_path), "--by", "alice",
        "--reason", "tracking number fixed",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"command {command_id} (notify_buyer for parcel:1): parked -> pending" in result.stdout

    keys = []

    async def ok(command):
        keys.append((command.id, command.idempotency_key))

    await dispatcher(sample_engine, ok).run_until_idle()
    assert (command_id, "parcel:1-ship#0:notify_buyer") in keys
    view = await sample_engine.commands.get(command_id)
    assert view.status == "done"
    [action] = view.actions
    assert (action.action, action.actor, action.reason) == (
        "retry",
        "alice",
        "tracking number fixed",
    )
    assert (action.status_before, action.attempts_before, action.error_before) == (
        "parked",
        1,
        "tracking number refused",
    )
    assert abs(action.at - time.time()) < 60


async def test_ops_a_discarded_command_never_runs_and_shows_who_and_why(sample_engine, db_path):
    """OPS-2: `commands discard ID --reason` stops a command for good; it is
    listed as discarded with the reason, and cannot be retried."""
    ids = await stuck_work(sample_engine)
    held_id, waiting_id = ids["parcel:2"], ids["parcel:3"]
    for command_id in (held_id, waiting_id):
        result = await invoke_cli(
            "commands", "discard", str(command_id), "--db", str(db_path), "--by", "bob",
            "--reason", "order cancelled by phone",
        )  # fmt: skip
        assert result.exit_code == 0, result.output

    calls = []

    async def record(command):
        calls.append(command.id)

    outbox = dispatcher(sample_engine, record)
    await sample_engine.release_held_commands()
    sample_engine.clock.advance(3600)
    await outbox.run_until_idle()
    assert held_id not in calls and waiting_id not in calls

    rows = await listed(db_path, "--status", "discarded")
    assert [r["id"] for r in rows] == [held_id, waiting_id]
    assert rows[0]["reason"] == "discarded by bob: order cancelled by phone"
    assert rows[0]["actions"][0]["status_before"] == "held"
    assert all(r["id"] not in (held_id, waiting_id) for r in await listed(db_path))

    again = await invoke_cli("commands", "retry", str(held_id), "--db", str(db_path))
    assert again.exit_code == 1
    assert "a discarded command never runs" in again.stderr


async def test_ops_a_done_command_is_neither_retried_nor_discarded(sample_engine, db_path):
    """OPS-2: a command already carried out is not run twice by hand."""
    ids = await stuck_work(sample_engine)
    for action in ("retry", "discard"):
        result = await invoke_cli("commands", action, str(ids["parcel:4"]), "--db", str(db_path))
        assert result.exit_code == 1
        assert "carried out already" in result.stderr
    assert (await sample_engine.commands.get(ids["parcel:4"])).actions == ()


@pytest.mark.parametrize("action", ["retry", "discard"])
@pytest.mark.parametrize("command_id", ["9999", "0", "-1", str(2**63 - 1), str(2**63)])
async def test_ops_an_unknown_id_exits_2_with_a_clear_message(
    sample_engine, db_path, action, command_id
):
    """OPS-2: acting on an id no command has is an input error, whatever its size."""
    await stuck_work(sample_engine)
    result = await invoke_cli("commands", action, "--db", str(db_path), "--", command_id)
    assert result.exit_code == 2
    assert f"no outbox command with id {command_id}" in result.stderr
    assert "Traceback" not in result.output


async def test_ops_the_library_api_lists_retries_and_discards(sample_engine, clock):
    """OPS-2: the same actions from the library: `engine.commands`."""
    ids = await stuck_work(sample_engine)
    commands = sample_engine.commands
    assert [v.entity for v in await commands.list()] == ["parcel:1", "parcel:2", "parcel:3"]
    assert [v.entity for v in await commands.list("failed")] == ["parcel:1", "parcel:3"]

    retried = await commands.retry(ids["parcel:2"], actor="ops-bot", reason="shop re-authorized")
    assert retried.status == "pending" and retried.hold_key is None
    assert retried.next_attempt_at is not None and retried.next_attempt_at <= clock.now()

    waiting = await commands.retry(ids["parcel:3"])
    assert waiting.next_attempt_at == clock.now(), "a retry does not wait out the backoff"
    assert waiting.attempts == 1 and waiting.actions[-1].actor == "api"

    discarded = await commands.discard(ids["parcel:1"], "duplicate of another order")
    assert discarded.status == "discarded"
    assert discarded.reason == "discarded by api: duplicate of another order"

    with pytest.raises(CommandNotFound):
        await commands.retry(12345)
    with pytest.raises(CommandActionRefused):
        await commands.discard(ids["parcel:1"])

    calls = []

    async def record(command):
        calls.append(command.entity)

    await dispatcher(sample_engine, record).run_until_idle()
    assert sorted(calls) == ["parcel:2", "parcel:3"]


async def test_ops_retry_parked_keeps_a_record_too(sample_engine, clock):
    """OPS-2: the older `retry_parked` function records its retry like the rest."""
    ids = await stuck_work(sample_engine)
    assert await retry_parked(sample_engine.store, ids["parcel:1"], clock.now())
    assert not await retry_parked(sample_engine.store, ids["parcel:2"], clock.now())
    [action] = (await sample_engine.commands.get(ids["parcel:1"])).actions
    assert action.status_before == "parked"


async def test_ops_a_command_discarded_while_its_call_fails_stays_discarded(sample_engine):
    """OPS-2: the dispatcher's bookkeeping after a failed call does not bring a
    command the operator discarded meanwhile back into the queue."""
    await ship(sample_engine, "parcel:1")
    [command] = await sample_engine.commands.list()

    async def discarded_mid_call(cmd):
        await sample_engine.commands.discard(cmd.id, "merchant shipped by hand")
        raise ConnectionError("platform down")

    await dispatcher(sample_engine, discarded_mid_call).run_once()
    assert (await sample_engine.commands.get(command.id)).status == "discarded"

    async def held_mid_call(cmd):
        raise CommandHeld("authorization inactive", hold_key="shop:1")

    await ship(sample_engine, "parcel:2")
    [second] = await sample_engine.commands.list()
    await sample_engine.commands.discard(second.id)
    assert await dispatcher(sample_engine, held_mid_call).run_once() == 0
    assert (await sample_engine.commands.get(second.id)).status == "discarded"


async def test_ops_actions_work_with_a_writer_process(tmp_path, clock, sample_charts):
    """OPS-2: with `writer="process"` (serve's option) the action's
    transaction runs in the writer process like every other write."""
    engine = await Engine.open(
        tmp_path / "p.db",
        charts=sample_charts,
        clock=clock,
        settings=EngineSettings(run_timers=False, run_outbox=False, writer="process"),
    )
    try:
        ids = await stuck_work(engine)
        assert (await engine.commands.retry(ids["parcel:1"], actor="alice")).status == "pending"
        assert (await engine.commands.discard(ids["parcel:2"], "no")).status == "discarded"
        with pytest.raises(CommandActionRefused):
            await engine.commands.retry(ids["parcel:4"])
        with pytest.raises(CommandNotFound):
            await engine.commands.discard(2**63 - 1)
        assert await engine.store.count("outbox_actions") == 2
    finally:
        await engine.stop()


async def test_ops_the_database_may_be_named_before_or_after_the_action(sample_engine, db_path):
    """OPS-2: `commands --db X retry ID` and `commands retry ID --db X` are the
    same; without a database the action exits 2 and says so."""
    ids = await stuck_work(sample_engine)
    before = await invoke_cli("commands", "--db", str(db_path), "retry", str(ids["parcel:1"]))
    assert before.exit_code == 0, before.output
    after = await invoke_cli("commands", "discard", str(ids["parcel:2"]), "--db", str(db_path))
    assert after.exit_code == 0, after.output
    statuses = {r["entity"]: r["status"] for r in await listed(db_path, "--status", "all")}
    assert (statuses["parcel:1"], statuses["parcel:2"]) == ("pending", "discarded")
    nowhere = await invoke_cli("commands", "retry", str(ids["parcel:1"]))
    assert nowhere.exit_code == 2 and "give the database with --db" in nowhere.stderr
