"""What both scheduled pulls share (PLAT-8): where their cursors live, how a
pass records its events, and how one failing source is kept from the others."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from adapters.http import PlatformError
from engine.bus import Receipt
from engine.logs import error_fields, get_logger

log = get_logger("channelsync.pull")

OVERLAP = 300  # seconds pulled again on every pass: clock skew and late writes
FIRST_LOOKBACK = 86400  # how far back the very first pass of a source looks

Publish = Callable[[Sequence[dict[str, Any]]], Awaitable[list[Receipt]]]


class CursorStore(Protocol):
    """The engine's store: named cursors, saved once a pass's events are recorded."""

    async def cursor(self, name: str) -> str | None: ...

    async def save_cursor(self, name: str, value: str, at: float) -> None: ...


async def isolated(entity: str, source: str, pull: Awaitable[int]) -> int:
    """One source's pass; its failure (the platform down, a refusal) is logged
    and leaves its cursor where it was, and the other sources still run."""
    try:
        return await pull
    except PlatformError as error:
        log.warning("pull failed", entity=entity, source=source, **error_fields(error))
        return 0


async def publish_new(publish_many: Publish, events: list[dict[str, Any]]) -> int:
    """Record the events (durably, before the caller moves its cursor); how many
    were new, not duplicates of a webhook or of an earlier overlapping pass."""
    if not events:
        return 0
    receipts = await publish_many(events)
    return sum(1 for receipt in receipts if receipt.outcome != "duplicate")
