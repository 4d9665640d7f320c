"""ENG-6: commands are recorded with their transition and carried out after commit."""

from __future__ import annotations

from engine import CommandFailed, CommandHeld, Engine, RetryLater
from engine.outbox import OutboxDispatcher, list_commands, release_held, retry_parked


async def ship(engine: Engine, parcel: str, n: int = 0) -> None:
    await engine.publish(engine.make_event("parcel.pack", parcel, {}, event_id=f"{parcel}-pack"))
    await engine.publish(
        engine.make_event(
            "parcel.ship", parcel, {"tracking_number": f"T{n}"}, event_id=f"{parcel}-ship"
        )
    )


def dispatcher(engine: Engine, handler, **options) -> OutboxDispatcher:
    return OutboxDispatcher(
        engine.store, {"notify_buyer": handler}, engine.publish, engine.clock, **options
    )


async def test_eng6_command_is_stored_in_the_same_transaction_as_its_transition(sample_engine):
    """ENG-6: command is stored in the same transaction as its transition."""
    await ship(sample_engine, "parcel:1")
    [command] = await list_commands(sample_engine.store)
    history = await sample_engine.history("parcel:1")
    assert command.event_seq == history[-1]["seq"] and history[-1]["to_state"] == "shipped"
    assert command.status == "pending" and command.payload == {
        "parcel": "1",
        "tracking_number": "T0",
    }


async def test_eng6_a_command_runs_once_and_its_result_events_re_enter(sample_engine):
    """ENG-6: a command runs once and its result events re enter."""
    await ship(sample_engine, "parcel:1")
    calls = []

    async def notify(command):
        calls.append(command.idempotency_key)
        return [
            {
                "event_id": f"result:{command.idempotency_key}",
                "type": "parcel.note",
                "source": "adapter",
                "entity": command.entity,
                "payload": {"text": "buyer notified"},
            }
        ]

    outbox = dispatcher(sample_engine, notify)
    assert await outbox.run_until_idle() == 1
    assert await outbox.run_until_idle() == 0
    assert len(calls) == 1
    assert (await sample_engine.entity("parcel:1")).data["notes"] == ["buyer notified"]
    [command] = await list_commands(sample_engine.store, status="done")
    assert command.attempts == 1


async def test_eng6_a_failing_command_is_retried_with_backoff_then_parked(sample_engine, clock):
    """ENG-6: a failing command is retried with backoff then parked."""
    await ship(sample_engine, "parcel:1")

    async def broken(command):
        raise ConnectionError("sandbox down")

    outbox = dispatcher(sample_engine, broken, max_attempts=3, base_delay=10)
    assert await outbox.run_once() == 1
    [command] = await list_commands(sample_engine.store)
    assert command.status == "pending" and command.attempts == 1
    assert "ConnectionError: sandbox down" in command.last_error
    assert await outbox.run_once() == 0, "not before its backoff delay"
    clock.advance(10)
    await outbox.run_once()
    clock.advance(20)
    await outbox.run_once()
    [command] = await list_commands(sample_engine.store)
    assert command.status == "parked" and command.attempts == 3

    assert await retry_parked(sample_engine.store, command.id, clock.now())
    calls = []

    async def fixed(command):
        calls.append(command.id)

    await dispatcher(sample_engine, fixed).run_until_idle()
    assert calls == [command.id]


async def test_eng6_retry_later_waits_as_told_and_failed_parks_at_once(sample_engine, clock):
    """ENG-6: retry later waits as told and failed parks at once."""
    await ship(sample_engine, "parcel:1")
    await ship(sample_engine, "parcel:2")

    async def handler(command):
        if command.entity == "parcel:1":
            raise RetryLater("rate limited", after=42)
        raise CommandFailed("tracking number refused")

    await dispatcher(sample_engine, handler).run_once()
    by_entity = {c.entity: c for c in await list_commands(sample_engine.store)}
    assert by_entity["parcel:1"].status == "pending"
    assert by_entity["parcel:2"].status == "parked"
    assert by_entity["parcel:2"].last_error == "tracking number refused"
    rows = await sample_engine.store.fetchall(
        "SELECT available_at FROM outbox WHERE entity='parcel:1'"
    )
    assert rows[0][0] == clock.now() + 42


async def test_eng6_held_commands_wait_and_resume_on_release(sample_engine, clock):
    """ENG-6: held commands wait and resume on release."""
    await ship(sample_engine, "parcel:1")
    authorized = False
    calls = []

    async def handler(command):
        if not authorized:
            raise CommandHeld("authorization inactive", hold_key="shop:1")
        calls.append(command.id)

    outbox = dispatcher(sample_engine, handler)
    await outbox.run_once()
    assert [c.status for c in await list_commands(sample_engine.store)] == ["held"]
    assert await outbox.run_once() == 0, "held work is not retried on its own"
    authorized = True
    assert await release_held(sample_engine.store, clock.now(), "shop:2") == 0
    assert await release_held(sample_engine.store, clock.now(), "shop:1") == 1
    await outbox.run_until_idle()
    assert len(calls) == 1


async def test_eng6_commands_of_one_entity_run_in_order(sample_engine, clock):
    """ENG-6: commands of one entity run in order."""
    await ship(sample_engine, "parcel:1")
    await sample_engine.publish(
        sample_engine.make_event("parcel.pack", "parcel:2", {}, event_id="p2")
    )
    await sample_engine.publish(
        sample_engine.make_event("parcel.ship", "parcel:2", {"tracking_number": "A"}, event_id="s2")
    )
    # A second command for parcel:1, queued behind its first.
    await sample_engine.store.execute_write(
        "INSERT INTO outbox (event_seq, entity, command, payload, idempotency_key, created_at,"
        " available_at) VALUES (1, 'parcel:1', 'notify_buyer', '{}', 'second', 0, 0)"
    )
    seen = []
    fail_first = True

    async def handler(command):
        nonlocal fail_first
        if command.idempotency_key != "second" and command.entity == "parcel:1" and fail_first:
            fail_first = False
            raise RetryLater("later", after=5)
        seen.append((command.entity, command.idempotency_key))

    outbox = dispatcher(sample_engine, handler)
    await outbox.run_until_idle()
    assert [s for s in seen if s[0] == "parcel:1"] == [], "the second waits behind the first"
    clock.advance(5)
    await outbox.run_until_idle()
    assert [k for e, k in seen if e == "parcel:1"][-1] == "second"
    assert ("parcel:2", "s2#0:notify_buyer") in seen


async def test_eng6_a_crash_before_marking_done_repeats_with_the_same_key(sample_engine):
    """ENG-6: The handler succeeded but the process died before 'done' was written:
    the command runs again, with the same idempotency key, so the platform can
    recognise the repeat."""
    await ship(sample_engine, "parcel:1")
    keys = []

    class Crash(BaseException):
        pass

    async def dies_after_call(command):
        keys.append(command.idempotency_key)
        raise Crash

    outbox = dispatcher(sample_engine, dies_after_call)
    try:
        await outbox.run_once()
    except BaseException as err:  # the simulated crash escapes the dispatcher
        assert isinstance(err, Crash)

    async def ok(command):
        keys.append(command.idempotency_key)

    await dispatcher(sample_engine, ok).run_until_idle()
    assert len(keys) == 2 and keys[0] == keys[1]


async def test_eng6_a_command_without_a_handler_does_not_stall_its_entity(sample_engine):
    """ENG-6: later commands of an entity still run when an earlier one has no
    handler in this process (it waits, visible, for a process that has one)."""
    await sample_engine.store.execute_write(
        "INSERT INTO outbox (event_seq, entity, command, payload, idempotency_key, created_at,"
        " available_at) VALUES (1, 'parcel:1', 'nobody_handles_this', '{}', 'orphan', 0, 0)"
    )
    await ship(sample_engine, "parcel:1")
    calls = []

    async def notify(command):
        calls.append(command.idempotency_key)

    await dispatcher(sample_engine, notify).run_until_idle()
    assert calls == ["parcel:1-ship#0:notify_buyer"]
    [orphan] = await list_commands(sample_engine.store, status="pending")
    assert orphan.type == "nobody_handles_this"
