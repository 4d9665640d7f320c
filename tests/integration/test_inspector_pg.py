"""The inspector over the PostgreSQL store: the same pages from the protocol's
plain reads, and a dead letter retried and discarded through an engine on the URL."""

from __future__ import annotations

import json
import re

import httpx
import pytest

from engine import ChartSet, Engine, FakeClock
from engine.inspector import Detached, Presenter, build_inspector
from engine.settings import EngineSettings
from engine.store.urls import open_store

pytestmark = pytest.mark.services
QUIET = EngineSettings(run_timers=False, run_outbox=False)


async def test_the_inspector_reads_and_acts_on_a_postgresql_store(
    pg_database_url: str, sample_charts: ChartSet, clock: FakeClock
) -> None:
    engine = await Engine.open(pg_database_url, charts=sample_charts, clock=clock, settings=QUIET)
    try:
        for n in (1, 2, 3):
            await engine.publish(
                engine.make_event("parcel.pack", f"parcel:{n}", {"weight_kg": n}, event_id=f"p{n}")
            )
        late = {
            "event_id": "late",
            "type": "parcel.teleport",
            "source": "w",
            "entity": "parcel:4",
            "payload": {},
        }
        await engine.publish_raw(json.dumps(late), "warehouse")  # no such event: refused
    finally:
        await engine.stop()
    store = await open_store(pg_database_url, settings=QUIET, read_only=True)
    try:
        backend = Detached(
            store,
            sample_charts,
            Presenter(show_pii=False, vault=None),
            open_writable=lambda: open_store(pg_database_url, settings=QUIET),
            target=pg_database_url,
        )
        app = build_inspector(backend)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
            listing = (await http.get("/", params={"q": "parcel:", "state": "packed"})).text
            assert all(f"parcel:{n}</a>" in listing for n in (1, 2, 3))
            counts = (await http.get("/counts")).text
            assert "packed" in counts and ">3<" in counts
            page = (await http.get("/entity", params={"key": "parcel:2"})).text
            assert "parcel.pack" in page and "transitioned" in page
            diff = (await http.get("/diff", params={"entity": "parcel:2", "seq": "2"})).text
            assert "weight_kg" in diff
            letters = (await http.get("/dead-letters")).text
            assert "warehouse" in letters and "Retry" in letters
            key = re.search(r'name="form-key" content="([^"]+)"', letters)
            assert key is not None
            [letter] = await store.dead_letters()
            answer = await http.post(
                f"/dead-letters/{letter.id}/retry",
                data={"form_key": key.group(1)},
                headers={"Accept": "application/json"},
            )
            # Through an engine opened on the URL for the moment: refused again, counted.
            assert "refused again" in answer.json()["message"]
            [again] = await store.dead_letters()
            assert again.count == 2
            discarded = await http.post(
                f"/dead-letters/{letter.id}/discard",
                data={"form_key": key.group(1), "reason": "no such event"},
                headers={"Accept": "application/json"},
            )
            assert discarded.json()["ok"] is True and await store.dead_letters() == []
            [kept] = await store.dead_letters(include_discarded=True)
            assert (kept.discarded_by, kept.discard_reason) == ("inspector", "no such event")
    finally:
        await store.close()
