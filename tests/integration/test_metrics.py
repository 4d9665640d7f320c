"""`engine.metrics` on real SQLite engines: each engine counts only its own
work in its own registry, the outbox gauges agree with what
`channelsync commands --status` lists (in one query, or from the lists for a
store without it), and the counters agree with the log."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from engine import ChartSet, CommandFailed, Engine, FakeClock, RetryLater
from engine.metrics import OUTBOX_GAUGES, EngineMetrics, OutboxCounts, outbox_counts, render_metrics
from engine.outbox import OutboxCommand
from engine.settings import EngineSettings

QUIET = EngineSettings(run_timers=False, run_outbox=False)


def samples(text: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text.decode())
        for s in family.samples
    }


async def ship(engine: Engine, parcel: str) -> None:
    make = engine.make_event
    await engine.publish(make("parcel.pack", parcel, {"weight_kg": 1.0}, event_id=f"{parcel}:p"))
    shipped = make("parcel.ship", parcel, {"tracking_number": "T"}, event_id=f"{parcel}:s")
    await engine.publish(shipped)


async def test_two_engines_count_apart_and_the_counts_match_their_logs(
    tmp_path: Path, clock: FakeClock, sample_charts: ChartSet
) -> None:
    first = await Engine.open(tmp_path / "a.db", charts=sample_charts, clock=clock, settings=QUIET)
    second = await Engine.open(tmp_path / "b.db", charts=sample_charts, clock=clock, settings=QUIET)
    try:
        await ship(first, "parcel:1")
        make = first.make_event
        await first.publish(
            make("parcel.pack", "parcel:1", {"weight_kg": 1}, event_id="parcel:1:p")
        )
        await first.publish(make("parcel.deliver", "parcel:2", event_id="early"))
        await second.publish(
            second.make_event("parcel.note", "parcel:9", {"text": "x"}, event_id="n")
        )
        a, b = samples(await render_metrics(first)), samples(await render_metrics(second))
    finally:
        await first.stop()
        await second.stop()
    events = "channelsync_events_total"
    assert a[(events, (("chart", "parcel"), ("outcome", "transitioned")))] == 2
    assert a[(events, (("chart", "parcel"), ("outcome", "ignored")))] == 1
    assert a[(events, (("chart", "parcel"), ("outcome", "duplicate")))] == 1
    assert b[(events, (("chart", "parcel"), ("outcome", "transitioned")))] == 1
    assert (events, (("chart", "parcel"), ("outcome", "ignored"))) not in b
    # One commit per publish here (each waits for the one before).
    assert a[("channelsync_commit_seconds_count", ())] == 4
    assert b[("channelsync_commit_seconds_count", ())] == 1


async def test_the_outbox_gauges_are_what_the_commands_listing_counts(
    tmp_path: Path, clock: FakeClock, sample_charts: ChartSet
) -> None:
    """Three parcels' notifications: one refused for good (parked), one to try
    again later (pending, failed once), one not tried yet; a fourth done."""

    async def notify(command: OutboxCommand) -> None:
        parcel = command.payload["parcel"]
        if parcel == "1":
            raise CommandFailed("refused")
        if parcel == "2":
            raise RetryLater("busy", after=60)

    engine = await Engine.open(
        tmp_path / "o.db",
        charts=sample_charts,
        clock=clock,
        settings=QUIET,
        handlers={"notify_buyer": notify},
    )
    try:
        for parcel in ("parcel:1", "parcel:2", "parcel:4"):
            await ship(engine, parcel)
        assert await engine.outbox.run_once() == 3
        await ship(engine, "parcel:3")
        store = engine.store
        assert isinstance(store, OutboxCounts)
        counted = await outbox_counts(store)
        from_lists = await outbox_counts(_ListsOnly(store))
        scraped = samples(await render_metrics(engine))
        listed = {
            status: len(await store.command_views(status, clock.now())) for status in OUTBOX_GAUGES
        }
    finally:
        await engine.stop()
    assert counted == from_lists == listed == {"pending": 2, "held": 0, "parked": 1, "failed": 2}
    for status, count in counted.items():
        assert scraped[("channelsync_outbox_commands", (("status", status),))] == count


def test_a_fresh_registry_holds_every_metric_before_anything_happens() -> None:
    names = {family.name for family in EngineMetrics().registry.collect()}
    assert names == {
        "channelsync_events",
        "channelsync_commit_seconds",
        "channelsync_webhooks",
        "channelsync_writer_restarts",
        "channelsync_bus_queue_depth",
        "channelsync_outbox_commands",
        "channelsync_dead_letters",
    }


class _ListsOnly:
    """A store that can list commands but not count them in one query."""

    def __init__(self, store: Any) -> None:
        self._store = store

    async def list_commands(self, **how: Any) -> Any:
        return await self._store.list_commands(**how)
