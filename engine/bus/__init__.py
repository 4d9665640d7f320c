"""The event bus: partitioned workers in front of one group-committing writer.

An event's entity key routes it to one of N bounded partition queues
(`routing`). Each partition's worker takes what is queued (up to a batch),
finds duplicates (`duplicates`) and loads missing entities into the entity
cache (`cache`) with one read each, steps every event against it in arrival
order (`stepper`, ENG-4), and hands the batch to the committer (`committer`),
which writes everything pending from all workers in one transaction and only
then resolves the publishers' futures: an acknowledgement always means
"durable".
"""

from engine.bus.event_bus import BusStore, EventBus
from engine.bus.receipts import Receipt

__all__ = ["BusStore", "EventBus", "Receipt"]
