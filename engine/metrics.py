"""What a running engine counts, for Prometheus (`/metrics`, docs/operations.md).

Every engine has its own `prometheus_client.CollectorRegistry`: a process
(a test, a host service) may run many engines, and the global registry would
mix them and refuse the second one's metrics.

Counters move where the work is done, once per commit rather than once per
event (the hot path pays a few dictionary look-ups per commit); the gauges
that describe what is waiting (bus queues, the outbox, dead letters) are read
when Prometheus scrapes, from the bus and with a few cheap queries on the
store, so nothing is kept up to date between scrapes.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Sequence
from operator import attrgetter
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from engine.chartset import ChartSet
from engine.store.rows import Batch

if TYPE_CHECKING:
    from engine.runtime import Engine

__all__ = [
    "COMMIT_BUCKETS",
    "CONTENT_TYPE",
    "OUTBOX_GAUGES",
    "EngineMetrics",
    "OutboxCounts",
    "render_metrics",
]

# The classic text format (0.0.4), which every Prometheus reads; the names and
# labels here are plain, so the newer 1.0.0 format would be the same bytes.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Seconds: a commit on a fast disk takes well under a millisecond alone and a
# few milliseconds for a large group; a slow or busy disk, tens to hundreds.
COMMIT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
# The outbox's commands a scrape reports, as `channelsync commands --status` names them.
OUTBOX_GAUGES = ("pending", "held", "parked", "failed")

_chart_and_outcome = attrgetter("chart", "outcome")


@runtime_checkable
class OutboxCounts(Protocol):
    """A store that counts its outbox by status in one cheap query."""

    async def outbox_counts(self) -> dict[str, int]:
        """Commands pending, held, parked and failed (parked, or pending after
        a failed attempt), as the keys of `OUTBOX_GAUGES`."""
        ...


class _Waiting(Protocol):
    """What the scrape-time gauges read: the bus's queues and the store."""

    def queue_depths(self) -> Sequence[int]: ...


class EngineMetrics:
    """An engine's metrics and the registry that holds them.

    ``charts`` name the chart of a duplicate (its row names only its entity).
    The bus calls `committed` after each commit; the receiver calls `webhook`
    for each answer; the writer's supervisor calls `writer_restarted`;
    `refresh` sets the gauges before a scrape."""

    def __init__(self, charts: ChartSet | None = None) -> None:
        # Imported here: prometheus_client brings an HTTP server along, and a
        # command that never opens an engine should not pay for it at start.
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry(auto_describe=True)
        by_kind = charts.by_kind if charts is not None else {}
        self._kinds = {kind: chart.name for kind, chart in by_kind.items()}
        registry = self.registry
        self.events = Counter(
            "channelsync_events",
            "Events committed, by chart and outcome (transitioned, ignored, error, duplicate).",
            ["chart", "outcome"],
            registry=registry,
        )
        self.commit_seconds = Histogram(
            "channelsync_commit_seconds",
            "Seconds each group commit took to become durable.",
            buckets=COMMIT_BUCKETS,
            registry=registry,
        )
        self.webhooks = Counter(
            "channelsync_webhooks",
            "Webhook requests answered, by platform and HTTP status code.",
            ["platform", "status"],
            registry=registry,
        )
        self.writer_restarts = Counter(
            "channelsync_writer_restarts",
            "Times a dead writer process was started again.",
            registry=registry,
        )
        self.queue_depth = Gauge(
            "channelsync_bus_queue_depth",
            "Items waiting in each bus partition's queue (an event, or a group published at once).",
            ["partition"],
            registry=registry,
        )
        self.outbox = Gauge(
            "channelsync_outbox_commands",
            "Outbox commands by status: pending, held, parked, failed (parked or retrying).",
            ["status"],
            registry=registry,
        )
        self.dead_letters = Gauge(
            "channelsync_dead_letters",
            "Dead letters kept (input that could not be used), one per distinct input.",
            registry=registry,
        )
        # Children by label values: `labels()` takes a lock and builds a key each
        # call (1.5 us against 0.5 us for the child's inc, on every webhook).
        self._event_children: dict[tuple[str, str], Any] = {}
        self._webhook_children: dict[tuple[str, int], Any] = {}

    def committed(self, batch: Batch, seconds: float) -> None:
        """One commit: its events by chart and outcome, and how long it took."""
        self.commit_seconds.observe(seconds)
        if batch.events:
            for key, count in Tally(map(_chart_and_outcome, batch.events)).items():
                self._event(key).inc(count)
        if batch.duplicates:
            kinds = self._kinds
            for entity, count in Tally(row.entity for row in batch.duplicates).items():
                kind = entity.partition(":")[0]
                self._event((kinds.get(kind, kind), "duplicate")).inc(count)

    def _event(self, key: tuple[str, str]) -> Any:
        child = self._event_children.get(key)
        if child is None:
            child = self._event_children[key] = self.events.labels(*key)
        return child

    def webhook(self, platform: str, status: int) -> None:
        key = (platform, status)
        child = self._webhook_children.get(key)
        if child is None:  # platforms are the receiver's own names, statuses few
            child = self._webhook_children[key] = self.webhooks.labels(platform, str(status))
        child.inc()

    def writer_restarted(self) -> None:
        self.writer_restarts.inc()

    async def refresh(self, bus: _Waiting, store: Any) -> None:
        """Set the gauges from what is waiting now (before a scrape)."""
        for partition, depth in enumerate(bus.queue_depths()):
            self.queue_depth.labels(str(partition)).set(depth)
        for status, count in (await outbox_counts(store)).items():
            self.outbox.labels(status).set(count)
        self.dead_letters.set(await store.count("dead_letters"))

    def render(self) -> bytes:
        """The registry in Prometheus' text format (gauges as last refreshed)."""
        from prometheus_client.exposition import generate_latest

        return generate_latest(self.registry)


async def outbox_counts(store: Any) -> dict[str, int]:
    """The outbox's `OUTBOX_GAUGES`: in one query where the store offers it,
    else from its lists of open commands (a store of another kind)."""
    if isinstance(store, OutboxCounts):
        return await store.outbox_counts()
    counts = dict.fromkeys(OUTBOX_GAUGES, 0)
    for status in ("pending", "held", "parked"):
        commands = await store.list_commands(status=status)
        counts[status] = len(commands)
        if status == "pending":
            counts["failed"] += sum(1 for c in commands if c.attempts and c.last_error)
        elif status == "parked":
            counts["failed"] += len(commands)
    return counts


async def render_metrics(engine: Engine) -> bytes:
    """``engine``'s metrics, gauges read now, in Prometheus' text format
    (serve it with `CONTENT_TYPE`)."""
    await engine.metrics.refresh(engine.bus, engine.store)
    return engine.metrics.render()
