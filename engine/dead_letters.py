"""Dead letters: input that could not be used, kept once per digest.

A dead letter keeps the sha256 of the input, its size and a prefix of it, not
the input itself: a body sent again and again (a platform's retries, or junk)
is one row whose count grows, and a large body costs a few kilobytes. Rows
last seen longer ago than the retention are purged (`Engine.purge_dead_letters`).
"""

from __future__ import annotations

import hashlib

from engine.events import EventRejected
from engine.settings import RETENTION as RETENTION  # re-exported: where it was defined before
from engine.store.rows import DeadLetterRow

# Bytes of the input that are kept: enough for an operator to see what it was.
PREFIX_BYTES = 4096


def dead_letter_row(
    raw: str | bytes, source: str, rejected: EventRejected, now: float, size: int | None = None
) -> DeadLetterRow:
    """The row for ``raw``; ``size``: the whole input's size when ``raw`` is
    only what was read of it (a body cut at the size cap)."""
    data = raw if isinstance(raw, bytes) else raw.encode("utf-8", errors="surrogatepass")
    return DeadLetterRow(
        now,
        source,
        rejected.entity,
        data[:PREFIX_BYTES].decode("utf-8", errors="replace"),
        rejected.reason,
        digest=hashlib.sha256(data).hexdigest(),
        size=len(data) if size is None else size,
        last_seen=now,
    )
