"""What a publisher is told once its event is committed."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import NamedTuple

from engine.step import Outcome
from engine.store.sqlite import DeadLetterRow, DuplicateRow, EventRow

# One row of a batch, as committed.
Row = EventRow | DuplicateRow | DeadLetterRow


class Receipt(NamedTuple):
    """What ``publish`` returns once the event is durably recorded.

    A named tuple: immutable, and built for every event on the hot path, where
    a frozen dataclass costs several times more to create."""

    event_id: str | None
    outcome: str
    entity: str | None = None
    seq: int | None = None
    from_state: str | None = None
    to_state: str | None = None
    reason: str | None = None
    commands: tuple[str, ...] = ()


def receipt_of(row: Row) -> Receipt:
    """The receipt of a committed row (an event, a duplicate or a dead letter)."""
    if isinstance(row, EventRow):
        return Receipt(
            row.event_id,
            row.outcome,
            row.entity,
            row.seq,
            row.from_state,
            row.to_state,
            row.reason,
            tuple([c.type for c in row.commands]) if row.commands else (),
        )
    if isinstance(row, DuplicateRow):
        return Receipt(row.event_id, Outcome.DUPLICATE.value, row.entity)
    return Receipt(None, "dead_letter", row.entity, reason=row.error)


@dataclass(slots=True)
class Group:
    """Many events of one partition acknowledged by one future (`submit_many`):
    the rows arrive in commit order, which is the order submitted."""

    future: asyncio.Future[list[Receipt]]
    expected: int
    rows: list[Row] = field(default_factory=list)

    def done(self) -> bool:
        return self.future.done()

    def add(self, row: Row) -> None:
        self.rows.append(row)
        if len(self.rows) == self.expected and not self.future.done():
            self.future.set_result([receipt_of(r) for r in self.rows])

    def set_exception(self, err: BaseException) -> None:
        if not self.future.done():
            self.future.set_exception(err)


# Who is told when an event is committed: its own future, or its group.
Sink = asyncio.Future[Receipt] | Group


def resolve(sink: Sink, row: Row) -> None:
    """Tell ``sink`` that ``row`` is committed."""
    if isinstance(sink, Group):
        sink.add(row)
    elif not sink.done():
        sink.set_result(receipt_of(row))


def refuse(sink: Sink, err: BaseException) -> None:
    """Tell ``sink`` that its event was not recorded."""
    if not sink.done():
        sink.set_exception(err)
