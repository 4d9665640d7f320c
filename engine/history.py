"""One entity's whole story: events, transitions, commands and their results,
timers, dead letters (`channelsync history`)."""

from __future__ import annotations

from typing import Any

from engine.clock import SystemClock
from engine.dead_letters import discarded_text
from engine.outbox_admin import OutboxCommands
from engine.store.protocol import Store


async def entity_history(store: Store, key: str) -> dict[str, Any]:
    entity = await store.entity(key)
    events = await store.history(key)
    commands = await OutboxCommands(store, SystemClock()).list("all", entity=key)
    by_seq: dict[int, list[dict[str, Any]]] = {}
    for command in commands:
        by_seq.setdefault(command.event_seq, []).append(
            {
                "id": command.id,
                "type": command.type,
                "status": command.status,
                "attempts": command.attempts,
                "last_error": command.last_error,
                # Why it stands where it stands: a discard's reason, not the
                # error it had before it was discarded.
                "reason": command.reason,
                "idempotency_key": command.idempotency_key,
            }
        )
    result_of = {f"result:{c.idempotency_key}": c.id for c in commands}
    for event in events:
        event["commands"] = by_seq.get(event["seq"], [])
        event["result_of_command"] = result_of.get(event["event_id"])
    timers = [
        {"name": name, "due_at": due_at, "event_type": event_type}
        for _entity, name, due_at, event_type, _id in await store.timers(key)
    ]
    # Discarded letters too, saying so: this is the entity's whole history.
    letters = [
        {
            "received_at": d.received_at,
            "source": d.source,
            "error": d.error,
            "raw": d.raw,
            "discarded": discarded_text(d) or None,
        }
        for d in await store.dead_letters(key, include_discarded=True)
    ]
    return {
        "key": key,
        "entity": entity.as_dict() if entity else None,
        "events": events,
        "timers": timers,
        "dead_letters": letters,
    }
