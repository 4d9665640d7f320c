"""The channel's cluster as its tests set it up: the sandboxes, the cluster's
PostgreSQL database and JetStream stream, and the channel's workers on them."""

from __future__ import annotations

from dataclasses import dataclass

from adapters.sandbox.story import Sandboxes
from channelsync.settings import ChannelSettings
from channelsync.worker_role import ChannelWorker
from engine.cluster.worker import WorkerSettings
from tests.cluster.cluster_support import LEASE_TTL


@dataclass
class ChannelCluster:
    box: Sandboxes
    url: str
    bus: str
    stream: str
    prefix: str
    settings: ChannelSettings

    def channel_worker(self, worker_id: str) -> ChannelWorker:
        """A worker of the channel on this cluster (not started), no plugins."""
        worker = WorkerSettings(
            self.url, self.bus, self.stream, self.prefix, lease_ttl=LEASE_TTL, worker_id=worker_id
        )
        return ChannelWorker(self.settings, worker, plugins=[])
