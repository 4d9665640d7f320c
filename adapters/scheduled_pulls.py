"""The two scheduled pulls wired over one store, and the loop that repeats one.

`build_pulls` makes TikTok's puller and Shoplazza's reconciler (PLAT-8) over a
store, recording through a ``publish_many`` and pulling the shops a `Shops`
callable names for each platform. `adapters.service.ChannelService` (serve:
every connected shop, into its own engine) and `channelsync.cluster_pulls` (a
cluster worker: the shops of its partitions, onto the bus) both build them
here, and both repeat a pass with `pull_loop`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from adapters.directory import StoreDirectory
from adapters.ids import DeadLetter
from adapters.pulls import Publish
from adapters.shoplazza.client import ShoplazzaClient
from adapters.shoplazza.reconciler import Listings, ShoplazzaReconciler
from adapters.tiktok_shop.client import TikTokClient
from adapters.tiktok_shop.puller import TikTokPuller
from engine.clock import Clock
from engine.logs import error_fields, get_logger
from engine.store.protocol import Store
from statecharts.connection import is_authorized

log = get_logger("channelsync.pull")

TIKTOK, SHOPLAZZA = "tiktok", "shoplazza"
# The shop connection entities (``shop:<store>``) a platform's pass goes over.
Shops = Callable[[str], Awaitable[list[str]]]
# One pass; None when it had nothing to do (nothing is logged for it then).
Pass = Callable[[], Awaitable[int | None]]


async def connected_shops(entities: Listings) -> list[str]:
    """The shops whose TikTok authorization holds: the only ones pulled."""
    found = await entities.entities(chart="shop_connection")
    return [e.key for e in found if is_authorized(e.state)]


def build_pulls(
    tiktok: TikTokClient,
    shoplazza: ShoplazzaClient,
    store: Store,
    clock: Clock,
    publish_many: Publish,
    shops: Shops,
    dead_letter: DeadLetter,
) -> tuple[TikTokPuller, ShoplazzaReconciler]:
    """Both pulls over ``store``: cursors, listings and the directory are read there."""

    async def tiktok_shops() -> list[str]:
        return await shops(TIKTOK)

    async def shoplazza_stores() -> list[str]:
        return [key.split(":", 1)[1] for key in await shops(SHOPLAZZA)]

    puller = TikTokPuller(
        tiktok,
        publish_many,
        tiktok_shops,
        store,
        StoreDirectory(store),
        dead_letter=dead_letter,
    )
    reconciler = ShoplazzaReconciler(
        shoplazza, publish_many, shoplazza_stores, store, store, clock, dead_letter=dead_letter
    )
    return puller, reconciler


async def pull_loop(
    platform: str, interval: float, pull: Pass, *, every: float | None = None, **context: Any
) -> None:
    """Run ``pull`` every ``interval`` seconds (or ``every``, when the pass
    itself decides what is due) until cancelled. The first pass runs at once:
    a restarted channel catches up on what it missed while it was down before
    it waits a whole interval."""
    bound = log.bind(platform=platform, interval=interval, **context)
    bound.info("scheduled pull started")
    while True:
        try:
            published = await pull()
        except Exception as error:  # the next pass starts from the same cursors
            bound.warning("scheduled pull failed", **error_fields(error))
        else:
            if published is not None:
                bound.info("scheduled pull done", events=published)
        await asyncio.sleep(interval if every is None else every)


__all__ = ["SHOPLAZZA", "TIKTOK", "Pass", "Shops", "build_pulls", "connected_shops", "pull_loop"]
