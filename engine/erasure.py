"""Erasing an entity's personal data (SEC-3): destroy its key, then log that it was done.

The key goes first: a crash between the two leaves the data unreadable and the
record missing, and erasing again writes the record (the event id is one per
entity, so a second erasure is a duplicate that changes nothing). The logged
event carries who asked and why, never the data itself; the entity's chart
(`<kind>.personal_data_erased`) turns it into what views show.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field

from engine.events import Payload
from engine.logs import get_logger

if TYPE_CHECKING:
    from engine.bus import Receipt
    from engine.outbox import OutboxCommand
    from engine.runtime import Engine

log = get_logger("channelsync.erasure")

# The outbox command a chart emits to erase on its own (address retention).
ERASE_COMMAND = "erase_personal_data"


class ErasureRecorded(Payload):
    """What the log keeps of an erasure: why and who, no personal data."""

    reason: str = Field(min_length=1, max_length=500)
    requested_by: str = Field(min_length=1, max_length=200)


class ErasureRefused(ValueError):
    """An erasure that cannot be done: unknown entity, or a chart without personal data."""


def erased_event_type(entity: str) -> str:
    return f"{entity.partition(':')[0]}.personal_data_erased"


async def _destroy(engine: Engine, entity: str, reason: str, requested_by: str) -> dict[str, Any]:
    """Check, destroy the key, and return the event that records it."""
    ErasureRecorded(reason=reason, requested_by=requested_by)  # refuse bad input before acting
    event_type = erased_event_type(entity)
    chart = engine.charts.by_kind.get(entity.partition(":")[0])
    if chart is None or event_type not in chart.accepted_events:
        raise ErasureRefused(f"{entity}: its chart keeps no personal data to erase")
    if await engine.store.entity(entity) is None:
        raise ErasureRefused(f"no entity {entity!r} in this database")
    destroyed = engine.vault.erase(
        entity, reason=reason, requested_by=requested_by, now=engine.clock.now()
    )
    log.info("personal data erased", entity=entity, key_destroyed=destroyed)
    return {
        "event_id": f"erase:{entity}",
        "type": event_type,
        "source": "operator",
        "entity": entity,
        "payload": {"reason": reason, "requested_by": requested_by},
    }


async def erase_personal_data(
    engine: Engine, entity: str, *, reason: str, requested_by: str
) -> Receipt:
    """Destroy ``entity``'s key and record the erasure in the log."""
    return await engine.publish(await _destroy(engine, entity, reason, requested_by))


async def erase_command(engine: Engine, command: OutboxCommand) -> list[dict[str, Any]]:
    """The outbox side: a chart asked for its entity's data to be erased."""
    p = command.payload
    return [await _destroy(engine, p["entity"], p["reason"], p.get("requested_by", "channelsync"))]
