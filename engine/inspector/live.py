"""The live feed: events as they commit, as server-sent events.

The feed asks the store for events after the last one it sent, every
``interval`` seconds (a cheap indexed read: nothing new costs one query). So
it sees what any process commits to the database, the inspector's own
engine or a `serve` beside a detached inspector alike. Each event is sent
with its timeline row already rendered, so a page inserts it as it is.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.requests import Request

from engine.inspector.backend import Backend
from engine.inspector.pages import event_row
from engine.inspector.present import erased
from engine.store.inspector_reads import events_after

KEEP_ALIVE = 15.0
# A stream ends after this long and the browser reconnects, resuming after the
# last event it got (its Last-Event-ID): a server shutting down never waits
# longer than this for an open page.
LIFETIME = 20.0


async def feed(
    request: Request,
    backend: Backend,
    after: int,
    entity: str | None,
    render: Callable[[dict[str, Any]], str],
    interval: float,
    closing: asyncio.Event,
) -> AsyncIterator[str]:
    """``logged`` events after seq ``after`` (of ``entity`` only, if given),
    until the client goes away, the app closes or `LIFETIME` has passed."""
    yield "retry: 1000\n\n"
    quiet = 0.0
    ends = asyncio.get_running_loop().time() + LIFETIME
    while not closing.is_set() and not await request.is_disconnected():
        if asyncio.get_running_loop().time() > ends:
            return
        rows = await events_after(backend.store, after)
        for item in rows:
            after = item["seq"]
            key = item["entity"]
            if entity is not None and key != entity:
                continue
            row = event_row(backend, key, item, await _erased(backend, key))
            message = {"seq": after, "entity": key, "html": render(row)}
            yield f"event: logged\nid: {after}\ndata: {json.dumps(message)}\n\n"
            quiet = 0.0
        if rows:
            continue
        if quiet >= KEEP_ALIVE:
            yield ": still here\n\n"
            quiet = 0.0
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(closing.wait(), interval)
        quiet += interval


async def _erased(backend: Backend, key: str) -> bool:
    entity = await backend.store.entity(key)
    return erased(entity.data if entity else None)


__all__ = ["feed"]
