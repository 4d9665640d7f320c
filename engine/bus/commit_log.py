"""What the bus logs of each commit."""

from __future__ import annotations

import logging

from engine.events import loggable_entity
from engine.logs import get_logger, reason_fields
from engine.step import Outcome
from engine.store.sqlite import Batch, EventRow

log = get_logger("channelsync.bus")


def log_commit(batch: Batch) -> None:
    """One INFO line per commit with its counts; a line per event at DEBUG,
    or at WARNING for an action that raised.

    The event log in SQLite already holds every event with its outcome and
    reason (`channelsync history`); a JSON log line costs about a third of an
    event's budget (docs/performance.md), so routine outcomes are summarised
    per commit."""
    debug_enabled = _debug_enabled()
    ignored = errors = 0
    for row in batch.events:
        outcome = row.outcome
        failed = outcome == Outcome.ERROR
        if failed:
            errors += 1
        elif outcome != Outcome.TRANSITIONED:
            ignored += 1
        if debug_enabled or failed:
            _log_event(row, failed)
    if debug_enabled:
        for dup in batch.duplicates:
            log.debug("duplicate", entity=dup.entity, event_id=dup.event_id)
    for dead in batch.dead_letters:
        # The entity of a dead letter is read from the refused body: it is
        # named only when it has an entity key's shape (SEC-2).
        log.warning(
            "dead letter", entity=loggable_entity(dead.entity), source=dead.source, error=dead.error
        )
    if batch.events or batch.duplicates:
        log.info(
            "committed",
            events=len(batch.events),
            transitioned=len(batch.events) - ignored - errors,
            ignored=ignored,
            errors=errors,
            duplicates=len(batch.duplicates),
            first_seq=batch.events[0].seq if batch.events else None,
            last_seq=batch.events[-1].seq if batch.events else None,
        )


def _log_event(row: EventRow, failed: bool) -> None:
    bound = log.bind(entity=row.entity, event_id=row.event_id, event_type=row.type, seq=row.seq)
    if row.outcome == Outcome.TRANSITIONED:
        bound.debug(
            "transitioned",
            from_state=row.from_state,
            to_state=row.to_state,
            commands=[c.type for c in row.commands] or None,
        )
    elif failed:
        bound.warning(row.outcome, state=row.from_state, **reason_fields(row.reason, row.payload))
    else:
        bound.debug(row.outcome, state=row.from_state, reason=row.reason)


def _debug_enabled() -> bool:
    """Whether the configured structlog wrapper lets DEBUG lines through
    (a wrapper that cannot say is assumed to)."""
    bound = log.bind()
    check = getattr(bound, "is_enabled_for", None) or getattr(bound, "isEnabledFor", None)
    return True if check is None else bool(check(logging.DEBUG))
