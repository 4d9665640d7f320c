"""`channelsync serve --role worker`: the channel's engine as a cluster worker.

Each worker opens the channel the way `bootstrap` always does (the channel's
charts, the platforms' command handlers behind the authorization gate, the
adapter plugins), on the PostgreSQL store, and lets `engine.cluster.worker`
feed it the partitions it leases from JetStream. Beside it run the scheduled
pulls of the shops whose connection lies in those partitions
(`channelsync.cluster_pulls`), and the settling of OAuth tokens a receiver
staged: a receiver's authorization is applied here, from the bus, so the
tokens staged for it are promoted here once its event transitioned the
connection (CONN-7). A worker that steps down opens the channel afresh,
platforms and pulls included (docs/scaling.md).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from dataclasses import replace

from adapters.plugins import AdapterPlugin, discover_adapter_plugins
from channelsync.bootstrap import bootstrap
from channelsync.cluster_pulls import BusAddress, ClusterPulls, PullingChannel
from channelsync.platforms import HttpPlatforms
from channelsync.settings import ChannelSettings
from engine.clock import SystemClock
from engine.cluster.processes import Supervisor
from engine.cluster.worker import Worker, WorkerSettings
from engine.logs import get_logger
from engine.settings import EngineSettings

log = get_logger("channelsync.worker_role")
# Seconds between two looks at the staged OAuth tokens: how long after its
# event is applied a receiver's pending authorization gets its tokens.
SETTLE_EVERY = 1.0
# Seconds staged tokens whose event is not recorded yet are kept: it may wait
# on the bus while every worker is down. Past that, they are discarded.
KEEP_UNRECORDED = 7 * 86400.0


class ChannelWorker(Worker):
    """A worker running the channel over the real platforms' APIs, and the
    scheduled pulls of the shops in its partitions (`channelsync.cluster_pulls`)."""

    def __init__(
        self,
        channel: ChannelSettings,
        worker: WorkerSettings,
        *,
        plugins: Sequence[AdapterPlugin] | None = None,
    ) -> None:
        super().__init__(worker, self._open, channel.engine)
        self.channel = channel
        self.plugins = discover_adapter_plugins() if plugins is None else list(plugins)
        bus = BusAddress(worker.bus, worker.stream, worker.prefix)
        self.pulls = ClusterPulls(channel, bus, self.owns, worker=worker.worker_id)
        self.settle_every = SETTLE_EVERY

    async def _open(self, store: str, engine_settings: EngineSettings) -> PullingChannel:
        settings = replace(self.channel, db=store, engine=engine_settings)
        platforms = HttpPlatforms(settings, keep_unrecorded=KEEP_UNRECORDED)
        app = await bootstrap(
            settings, clock=SystemClock(), platforms=platforms, plugins=self.plugins
        )
        if self.leases is not None:
            self.pulls.worker = self.leases.worker_id
        running = self.pulls.start(app, platforms)
        settling = self._settle_loop(platforms)
        running.tasks.append(asyncio.create_task(settling, name="settle-oauth"))
        return running

    async def _settle_loop(self, platforms: HttpPlatforms) -> None:
        """Promote the tokens of receivers' authorizations once applied, whichever
        worker applied them (promoting is one transaction: of two, one wins)."""
        while True:
            await asyncio.sleep(self.settle_every)
            try:
                await platforms.settle_staged()
            except Exception as error:  # the store may be away: try again next time
                log.warning("staged oauth tokens not settled", error=type(error).__name__)


def channel_worker(
    channel: ChannelSettings,
    worker: WorkerSettings,
    *,
    plugins: Sequence[AdapterPlugin] | None = None,
) -> ChannelWorker:
    """A worker running the channel over the real platforms' APIs."""
    return ChannelWorker(channel, worker, plugins=plugins)


def worker_argv(serve_args: Sequence[str]) -> list[str]:
    """How the supervisor starts one worker process: this interpreter running
    `channelsync serve` with ``serve_args`` (which say ``--workers 1``)."""
    return [sys.executable, "-m", "engine.cli.main", "serve", *serve_args]


async def run_workers(
    channel: ChannelSettings,
    worker: WorkerSettings,
    count: int,
    serve_args: Sequence[str],
    stop: asyncio.Event,
    *,
    plugins: bool = True,
) -> None:
    """One worker in this process, or ``count`` supervised worker processes."""
    if count == 1:
        await channel_worker(worker=worker, channel=channel, plugins=None if plugins else []).run(
            stop
        )
        return
    await Supervisor(worker_argv(serve_args), count).run(stop)


__all__ = ["ChannelWorker", "channel_worker", "run_workers", "worker_argv"]
