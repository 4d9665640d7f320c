"""The tests any `engine.store.protocol.Store` must pass, shipped with the engine.

Subclass `StoreConformance` in a test module and say how to open the store
under test; pytest then runs every test of the suite against it::

    from engine.testing.store_conformance import StoreConformance

    async def open_mine(directory: Path) -> Store:
        return await MyStore.open(directory / "data")

    class TestMyStore(StoreConformance):
        factory = staticmethod(open_mine)
        # Optional: the same data opened read-only (writes must raise WriteRefused).
        read_only_factory = staticmethod(open_mine_read_only)
        examples = 20  # examples per property; each opens a store of its own

A factory opens a new, empty store in the directory it is given, and the same
data again once that store was closed. The suite covers: a commit is all or
nothing; event ids are unique and known; entities hold their last state;
duplicates are counted; the log reads back in commit order, whole, in batches,
from a sequence number or for one entity; timers fire by time, then entity,
then name, and can be moved, cancelled and fired once; dead letters are kept
once per (source, digest, reason) and purged by age; cursors; commands are
recorded once per idempotency key; claims are exclusive until their lease runs
out, renewable, releasable and voidable; an entity's commands run in order;
outcomes (done, held, retry, parked) and operators' retry and discard; inert
commands never run; a read-only store refuses every write; every logged event
keeps the chart version that applied it, every entity its version and its
history (ENG-9).
"""

from __future__ import annotations

from engine.testing.store_builders import StoreCase, StoreFactory
from engine.testing.store_conformance_dead_letters import DeadLetterConformance
from engine.testing.store_conformance_log import LogConformance
from engine.testing.store_conformance_outbox import OutboxConformance
from engine.testing.store_conformance_versions import VersionConformance


class StoreConformance(
    LogConformance, OutboxConformance, VersionConformance, DeadLetterConformance
):
    """Every conformance test (see the module's docstring)."""


__all__ = ["StoreCase", "StoreConformance", "StoreFactory"]
