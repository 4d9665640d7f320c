"""`/metrics` on serve's receiver, scraped over real HTTP while the demo's
story runs against both sandboxes (writer in a child process), parsed with
prometheus_client's own parser: every metric is there and moves when what it
counts happens."""

from __future__ import annotations

import asyncio
import os
import signal
from dataclasses import replace
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from adapters.sandbox import story
from adapters.sandbox.story import SHOP, Sandboxes, connect_shop
from engine.metrics import OUTBOX_GAUGES as OUTBOX
from engine.settings import EngineSettings
from engine.store.process_writer import ProcessWriter

BURST = 400
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(box: Sandboxes) -> Samples:
    """Every sample of one scrape, by name and labels."""
    assert box.service.http is not None
    answer = await box.admin.get(f"{box.service.http.url}/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum over every series of ``name`` whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= set(ls))


@pytest.fixture
async def box(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The demo's sandboxes, with the writer in a child process (so it can be
    killed and restarted) and one event per batch (so a burst stays queued
    long enough to be seen)."""
    config = story.sandbox_config

    def with_process_writer(*args: object) -> object:
        settings = EngineSettings(writer="process", max_batch=1)
        return replace(config(*args), engine=settings)  # type: ignore[arg-type]

    monkeypatch.setattr(story, "sandbox_config", with_process_writer)
    started = await Sandboxes.start(tmp_path / "metrics.db")
    try:
        yield started
    finally:
        await started.stop()


async def test_every_metric_is_scraped_and_moves_as_the_demo_runs(box: Sandboxes) -> None:
    engine, service = box.service.engine, box.service
    start = await scrape(box)
    for name in ("channelsync_dead_letters", "channelsync_writer_restarts_total"):
        assert (name, ()) in start, name
    assert value(start, "channelsync_commit_seconds_count") == 0
    assert {value(start, "channelsync_outbox_commands", status=s) for s in OUTBOX} == {0}

    await connect_shop(box)
    await service.add_collection(SHOP, "summer")
    queued = await scrape(box)  # the products' commands are written, not yet carried out
    assert value(queued, "channelsync_outbox_commands", status="pending") > 0
    await box.settle()
    await box.advance(2 * 3600)
    synced = await scrape(box)
    assert value(synced, "channelsync_outbox_commands", status="pending") == 0
    assert value(synced, "channelsync_commit_seconds_count") > 0
    assert value(synced, "channelsync_commit_seconds_sum") > 0
    for chart in ("shop_connection", "product_listing"):
        assert total(synced, "channelsync_events_total", chart=chart, outcome="transitioned") > 0
    assert total(synced, "channelsync_webhooks_total", platform="tiktok", status="200") > 0

    # TikTok no longer knows the channel's token: unpublishing a product asks
    # TikTok to deactivate it, TikTok refuses, the command is parked.
    box.tiktok.tokens.clear()
    box.shoplazza.product_action("1001", "update", published=False)
    await box.settle()
    refused = await scrape(box)
    assert value(refused, "channelsync_outbox_commands", status="parked") >= 1
    assert value(refused, "channelsync_outbox_commands", status="failed") >= 1
    assert value(refused, "channelsync_webhooks_total", platform="shoplazza", status="200") > 0

    # A webhook with a forged signature, one too large (kept as a dead
    # letter), one to a platform nobody serves.
    receiver = f"{service.http.url}/webhooks"  # type: ignore[union-attr]
    forged = await box.admin.post(f"{receiver}/tiktok", content=b'{"type": 1}')
    huge = await box.admin.post(f"{receiver}/shoplazza", content=b"x" * 1_100_000)
    stranger = await box.admin.post(f"{receiver}/acme", content=b"{}")
    assert (forged.status_code, huge.status_code, stranger.status_code) == (401, 413, 404)
    # A burst of events: the partitions' queues fill faster than they drain.
    futures = [
        await engine.submit(
            engine.make_event("connection.connect", f"shop:burst-{n}", event_id=f"b{n}")
        )
        for n in range(BURST)
    ]
    during = await scrape(box)
    await asyncio.gather(*futures)
    # The writer process dies and is started again (ENG-12).
    writer = engine.store.writer  # type: ignore[attr-defined]
    assert isinstance(writer, ProcessWriter)
    os.kill(writer.pid, signal.SIGKILL)  # type: ignore[arg-type]
    while writer.restarts < 1 or writer.gone is not None:
        await asyncio.sleep(0.01)
    end = await scrape(box)

    assert total(during, "channelsync_bus_queue_depth") > 0
    assert total(end, "channelsync_bus_queue_depth") == 0
    assert value(end, "channelsync_webhooks_total", platform="tiktok", status="401") == 1
    assert value(end, "channelsync_webhooks_total", platform="shoplazza", status="413") == 1
    assert value(end, "channelsync_webhooks_total", platform="unknown", status="404") == 1
    assert value(end, "channelsync_dead_letters") == value(refused, "channelsync_dead_letters") + 1
    assert value(end, "channelsync_writer_restarts_total") == 1
    burst = total(end, "channelsync_events_total", chart="shop_connection") - total(
        refused, "channelsync_events_total", chart="shop_connection"
    )
    assert burst == BURST
    # What the counters say is what the log holds.
    logged = await engine.store.count("events")
    counted = total(end, "channelsync_events_total") - total(
        end, "channelsync_events_total", outcome="duplicate"
    )
    assert counted == logged
