"""`channelsync serve --store postgresql://... --bus nats://... --role ...`.

A cluster member runs a receiver (webhooks verified and published to
JetStream, `channelsync.receiver_role`), workers (leased partitions applied
to the PostgreSQL store, `channelsync.worker_role`), or both, until SIGINT or
SIGTERM (docs/scaling.md).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from adapters.cli import out, stop_on_signals

if TYPE_CHECKING:
    from channelsync.settings import ChannelSettings


@dataclass(frozen=True)
class ClusterRole:
    """What serve's options ask of one cluster member."""

    store: str
    bus: str
    role: str  # receiver, worker or all
    workers: int
    lease_ttl: float
    host: str
    port: int
    plugins: bool

    def worker_args(self, settings: ChannelSettings) -> list[str]:
        """serve's arguments for one of ``workers`` supervised worker processes
        (the pull intervals too: each worker pulls the shops of its partitions)."""
        args = ["--store", self.store, "--bus", self.bus, "--role", "worker", "--workers", "1"]
        args += ["--lease-ttl", repr(self.lease_ttl)]
        args += ["--pull-interval", repr(settings.pull_interval)]
        args += ["--shoplazza-pull-interval", repr(settings.shoplazza_pull_interval)]
        return args if self.plugins else [*args, "--no-plugins"]


async def serve_cluster(settings: ChannelSettings, role: ClusterRole) -> None:
    """Run the member's parts until a signal; one part failing stops the others."""
    from channelsync.worker_role import run_workers
    from engine.cluster.worker import WorkerSettings

    stop = stop_on_signals()
    parts: list[Awaitable[None]] = []
    if role.role in ("worker", "all"):
        worker = WorkerSettings(store=role.store, bus=role.bus, lease_ttl=role.lease_ttl)
        parts.append(
            run_workers(
                settings,
                worker,
                role.workers,
                role.worker_args(settings),
                stop,
                plugins=role.plugins,
            )
        )
    if role.role in ("receiver", "all"):
        from channelsync.receiver_role import run_receiver

        parts.append(
            run_receiver(
                settings, store=role.store, bus=role.bus, host=role.host, port=role.port, stop=stop
            )
        )
    tasks = [asyncio.ensure_future(part) for part in parts]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    finally:
        stop.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
    for result in results:
        if isinstance(result, Exception):
            out.print(f"[red]error:[/red] {result}", highlight=False)
            raise SystemExit(1)


__all__ = ["ClusterRole", "serve_cluster"]
