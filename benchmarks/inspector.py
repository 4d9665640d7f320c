"""The inspector's server time at scale: the entity list at 1M entities, an
entity page with 10,000 events.

    python -m benchmarks.inspector [--entities 1000000] [--events 10000] [--runs 15]

Builds a database fast with direct inserts (the schema from `SQLiteStore.open`,
then plain SQLite `executemany`): ``--entities`` entities of the channel's
charts (orders, listings, shops) in realistic configurations, and one order,
``order:hot``, with ``--events`` logged events and a few commands. Then asks
the inspector's app (in process, through ASGI: the server's whole work, HTML
rendered, no network) for each page ``--runs`` times and reports the median
and the slowest, in milliseconds. Targets: the list under 100 ms, the entity
under 300 ms. Results in benchmarks/results/inspector.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"
HOT = "order:hot"
ORDER_STATES = [
    ("lifecycle.awaiting_shipment,sync.synced,fulfillment.none", 40),
    ("lifecycle.in_transit,sync.synced,fulfillment.pushed.sent", 30),
    ("lifecycle.completed,sync.synced,fulfillment.pushed.sent", 25),
    ("lifecycle.cancelled,sync.synced,fulfillment.none", 4),
    ("lifecycle.unpaid,sync.failed,fulfillment.none", 1),
]
LISTING_STATES = [("approved.selling", 70), ("rejected.by_tiktok", 20), ("in_review", 10)]


def _pick(rng: random.Random, weighted: list[tuple[str, int]]) -> str:
    return rng.choices([s for s, _ in weighted], [w for _, w in weighted])[0]


def _entity_rows(count: int, rng: random.Random, now: float) -> Any:
    data = json.dumps({"channel": "TikTok Shop", "detail": {"line_items": [{"sku_id": "SKU-1"}]}})
    for n in range(count):
        if n % 10 < 8:
            key, kind, chart = f"order:{576000000000000000 + n}", "order", "order"
            state = _pick(rng, ORDER_STATES)
        elif n % 10 == 8:
            key, kind, chart = f"listing:shop-{n % 97}:{n}", "listing", "product_listing"
            state = _pick(rng, LISTING_STATES)
        else:
            key, kind, chart = f"shop:store-{n}", "shop", "shop_connection"
            state = "authorized.active"
        yield (key, kind, chart, state, data, 5, n, now - rng.random() * 86400 * 30, 2, None)


def _hot_events(count: int, now: float) -> Any:
    state = "lifecycle.awaiting_shipment,sync.synced,fulfillment.none"
    for n in range(count):
        payload = json.dumps(
            {
                "order_id": "hot",
                "order_status": "AWAITING_SHIPMENT",
                "update_time": 1_700_000_000 + n,
            }
        )
        yield (
            f"hot-{n}",
            "order.status_changed",
            "tiktok",
            HOT,
            "order",
            now - count + n,
            now - count + n,
            payload,
            "transitioned",
            state,
            state,
            None,
            2,
        )


async def build(path: Path, entities: int, events: int) -> None:
    from engine.store.sqlite import SQLiteStore

    store = await SQLiteStore.open(path)  # the schema, and nothing else
    await store.close()
    rng = random.Random(17)
    now = time.time()
    db = sqlite3.connect(path)
    with db:
        db.executemany(
            "INSERT INTO entities (key, kind, chart, state, data, version, last_seq, updated_at,"
            " chart_version, history) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            _entity_rows(entities, rng, now),
        )
        db.executemany(
            "INSERT INTO events (event_id, type, source, entity, chart, occurred_at, received_at,"
            " payload, outcome, from_state, to_state, reason, chart_version)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            _hot_events(events, now),
        )
        state = "lifecycle.in_transit,sync.synced,fulfillment.pushed.sent"
        db.execute(
            "INSERT INTO entities VALUES (?, 'order', 'order', ?, '{}', ?, ?, ?, 2, NULL)",
            (HOT, state, events, events, now),
        )
        db.executemany(
            "INSERT INTO outbox (event_seq, entity, command, payload, idempotency_key, status,"
            " attempts, created_at, available_at) VALUES (?, ?, 'push_shipping', '{}', ?, 'done',"
            " 1, ?, ?)",
            [(n * 500 + 1, HOT, f"hot-cmd-{n}", now, now) for n in range(20)],
        )
    db.execute("ANALYZE")
    db.close()


async def measure(path: Path, runs: int) -> dict[str, dict[str, float]]:
    import httpx

    from engine.chartset import ChartSet, discover_packages
    from engine.inspector import Detached, Presenter, build_inspector
    from engine.store.sqlite import SQLiteStore

    charts = ChartSet.load(discover_packages().values())
    store = await SQLiteStore.open_readonly(path)
    backend = Detached(
        store,
        charts,
        Presenter(show_pii=False, vault=None),
        open_writable=lambda: SQLiteStore.open(path),
    )
    app = build_inspector(backend)
    pages = {
        "entity list, first page": "/",
        "entity list, a page deep in the keys": "/?after=order:576000000000500000",
        "entity list, key prefix": "/?q=order:5760000000001234",
        "entity list, chart and a common state": "/?chart=order&state=lifecycle.in_transit",
        "entity list, a rare state (1 in 125)": "/?state=sync.failed",
        "counts per state (all 1M)": "/counts",
        "entity with 10,000 events": f"/entity?key={HOT}",
        "entity with 10,000 events, an older page": f"/entity?key={HOT}&before=5000",
    }
    found: dict[str, dict[str, float]] = {}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
        for name, url in pages.items():
            times = []
            for _ in range(runs + 1):  # the first one warms the caches, and is dropped
                start = time.perf_counter()
                response = await http.get(url)
                times.append((time.perf_counter() - start) * 1000)
                assert response.status_code == 200, (url, response.status_code)
            times = times[1:]
            found[name] = {
                "median_ms": round(statistics.median(times), 1),
                "max_ms": round(max(times), 1),
            }
            figure = found[name]
            print(
                f"{name:<48} median {figure['median_ms']:>7.1f} ms  max {figure['max_ms']:>7.1f} ms"
            )
    await store.close()
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entities", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="channelsync-inspector-") as folder:
        path = Path(folder) / "inspector.db"
        start = time.perf_counter()
        asyncio.run(build(path, args.entities, args.events))
        took = time.perf_counter() - start
        print(f"built {args.entities} entities and {args.events} events in {took:.1f} s")
        figures = asyncio.run(measure(path, args.runs))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "inspector.json").write_text(
        json.dumps(
            {"entities": args.entities, "events": args.events, "runs": args.runs, "pages": figures},
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
