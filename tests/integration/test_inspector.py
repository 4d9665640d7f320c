"""The inspector's app over HTTP (in process): the token of serve --inspector,
loopback only and form keys, actions recorded like any other, personal data
masked unless asked for, data diffs replayed from the log."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from engine import Engine
from engine.inspector import Attached, Detached, Presenter, build_inspector
from engine.inspector.diffs import Change, diff, event_diff
from engine.inspector.mounted import inspector_token, mount_inspector
from engine.store.sqlite import SQLiteStore
from tests.conftest import invoke_cli

TOKEN = "a-test-token-of-some-length"


def client(app: object, host: str = "127.0.0.1") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app)
    return httpx.AsyncClient(transport=transport, base_url=f"http://{host}")


async def shipped(engine: Engine, key: str = "parcel:1") -> None:
    """A parcel packed and shipped: its shipping emits a notify_buyer command."""
    await engine.publish(engine.make_event("parcel.pack", key, {"weight_kg": 1.5}, event_id="e1"))
    await engine.publish(
        engine.make_event("parcel.ship", key, {"tracking_number": "1Z999"}, event_id="e2")
    )


def form_key(page: str) -> str:
    found = re.search(r'name="form-key" content="([^"]+)"', page)
    assert found is not None
    return found.group(1)


async def test_serve_inspector_wants_its_token_and_keeps_it_in_a_cookie(
    sample_engine: Engine,
) -> None:
    app = Starlette()
    mount_inspector(app, sample_engine, TOKEN)
    async with client(app) as http:
        assert (await http.get("/inspector/")).status_code == 401
        assert (await http.get("/inspector/?token=wrong")).status_code == 401
        entered = await http.get("/inspector/?token=" + TOKEN + "&q=parcel")
        assert entered.status_code == 303
        assert entered.headers["location"] == "/inspector/?q=parcel"  # the token leaves the URL
        cookie = entered.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/inspector" in cookie
        page = await http.get("/inspector/")  # the cookie is sent now
        assert page.status_code == 200 and "<h1>Entities</h1>" in page.text
    async with client(app) as other:
        bearer = await other.get("/inspector/", headers={"Authorization": f"Bearer {TOKEN}"})
        assert bearer.status_code == 200


def test_the_token_comes_from_the_environment_or_a_private_file(tmp_path: Path) -> None:
    db = tmp_path / "x.db"
    token, path = inspector_token(db, env={"CHANNELSYNC_INSPECTOR_TOKEN": "given"})
    assert (token, path) == ("given", None)
    token, path = inspector_token(db, env={})
    assert path is not None and path.read_text().strip() == token and len(token) >= 24
    assert path.stat().st_mode & 0o777 == 0o600
    again, _ = inspector_token(db, env={})
    assert again != token  # a new one each start


async def test_actions_need_the_page_form_key_and_are_recorded(sample_engine: Engine) -> None:
    await shipped(sample_engine)
    app = build_inspector(Attached(sample_engine, Presenter(show_pii=False, vault=None)))
    async with client(app) as http:
        page = await http.get("/entity", params={"key": "parcel:1"})
        assert "notify_buyer" in page.text and "pending" in page.text
        [command] = await sample_engine.commands.list("all", entity="parcel:1")
        forged = await http.post(
            f"/commands/{command.id}/discard", data={"reason": "x", "form_key": "guess"}
        )
        assert forged.status_code == 303 and "stale" in forged.headers["location"]
        assert (await sample_engine.commands.get(command.id)).status == "pending"
        done = await http.post(
            f"/commands/{command.id}/discard",
            data={"reason": "buyer asked by phone", "form_key": form_key(page.text)},
            headers={"Accept": "application/json"},
        )
        assert done.json() == {
            "ok": True,
            "message": f"command {command.id} (notify_buyer): now discarded",
        }
        view = await sample_engine.commands.get(command.id)
        assert view.status == "discarded"
        assert [(a.action, a.actor, a.reason) for a in view.actions] == [
            ("discard", "inspector", "buyer asked by phone")
        ]
        refused = await http.post(
            f"/commands/{command.id}/retry",
            data={"form_key": form_key(page.text)},
            headers={"Accept": "application/json"},
        )
        assert refused.status_code == 409 and "discarded" in refused.json()["message"]


async def test_a_dead_letter_is_masked_unless_personal_data_is_asked_for(
    sample_engine: Engine,
) -> None:
    await sample_engine.publish_raw(b"call jane.doe@example.com on +1 (415) 555-0100", "mail")
    for show_pii, shown, hidden in ((False, "[email]", "jane.doe"), (True, "jane.doe", "[email]")):
        presenter = Presenter(show_pii=show_pii, vault=sample_engine.vault)
        app = build_inspector(Attached(sample_engine, presenter))
        async with client(app) as http:
            page = (await http.get("/dead-letters")).text
        assert shown in page and hidden not in page
        assert "its input is not JSON" in page  # and so it cannot be retried


async def test_detached_inspector_answers_loopback_names_only(
    sample_engine: Engine, db_path: Path
) -> None:
    await shipped(sample_engine)
    store = await SQLiteStore.open_readonly(db_path)
    try:
        backend = Detached(
            store,
            sample_engine.charts,
            Presenter(show_pii=False, vault=None),
            open_writable=lambda: SQLiteStore.open(db_path),
        )
        app = build_inspector(backend, loopback_only=True)
        async with client(app, host="rebound.example") as http:
            assert (await http.get("/")).status_code == 421
        async with client(app, host="localhost") as http:
            page = (await http.get("/entity", params={"key": "parcel:1"})).text
        # The engine of this test holds the database: the page says so.
        assert "held by a running engine" in page and "pid" in page
    finally:
        await store.close()


async def test_a_diff_is_the_data_an_event_changed(sample_engine: Engine) -> None:
    await shipped(sample_engine)
    [pack, ship] = await sample_engine.history("parcel:1")
    packed = await event_diff(sample_engine.store, sample_engine.charts, "parcel:1", pack["seq"])
    assert packed.found and packed.changes == [Change("weight_kg", "added", None, 1.5)]
    shipping = await event_diff(sample_engine.store, sample_engine.charts, "parcel:1", ship["seq"])
    assert shipping.changes == [Change("tracking_number", "added", None, "1Z999")]
    missing = await event_diff(sample_engine.store, sample_engine.charts, "parcel:2", ship["seq"])
    assert not missing.found


@pytest.mark.parametrize(
    ("before", "after", "changes"),
    [
        ({"a": 1}, {"a": 1}, []),
        ({"a": 1}, {"a": 1.0}, [Change("a", "changed", 1, 1.0)]),
        ({"a": True}, {"a": 1}, [Change("a", "changed", True, 1)]),
        ({"a": {"b": [1]}}, {"a": {"b": [1, 2]}}, [Change("a.b", "changed", [1], [1, 2])]),
        (
            {"a": 1, "b": 2},
            {"b": 3, "c": None},
            [
                Change("a", "removed", 1, None),
                Change("b", "changed", 2, 3),
                Change("c", "added", None, None),
            ],
        ),
    ],
)
def test_diff_names_each_leaf_that_moved(
    before: object, after: object, changes: list[Change]
) -> None:
    assert diff(before, after) == changes


async def test_channelsync_inspect_prints_its_address_and_serves_the_database(
    sample_engine: Engine, db_path: Path, tmp_path: Path
) -> None:
    import asyncio
    import os
    import signal
    import sys

    await shipped(sample_engine)
    await sample_engine.stop()  # inspect reads it beside no engine
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "engine.cli.main",
        "inspect",
        "--db",
        str(db_path),
        "--port",
        "0",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "COLUMNS": "200"},
    )
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 60)).decode()
        address = re.search(r"http://127\.0\.0\.1:\d+/", line)
        assert address is not None, line
        async with httpx.AsyncClient() as http:
            page = await http.get(address.group(0) + "entity", params={"key": "parcel:1"})
        assert page.status_code == 200
        assert "parcel.ship" in page.text and "shipped" in page.text
        assert "held by a running engine" not in page.text
    finally:
        process.send_signal(signal.SIGINT)
        await asyncio.wait_for(process.wait(), 30)
    missing = await invoke_cli("inspect", "--db", str(tmp_path / "none.db"), "--port", "0")
    assert missing.exit_code == 1 and "no database at" in missing.output


async def test_a_dead_letter_still_refused_says_so_and_counts_once_more(
    sample_engine: Engine,
) -> None:
    raw = (
        '{"event_id": "x1", "type": "parcel.teleport", "source": "api",'
        ' "entity": "parcel:9", "payload": {}}'
    )
    await sample_engine.publish_raw(raw, "api")
    app = build_inspector(Attached(sample_engine, Presenter(show_pii=False, vault=None)))
    async with client(app) as http:
        page = await http.get("/dead-letters")
        [letter] = await sample_engine.dead_letters()
        answer = await http.post(
            f"/dead-letters/{letter.id}/retry",
            data={"form_key": form_key(page.text)},
            headers={"Accept": "application/json"},
        )
    assert answer.json()["ok"] is True
    assert (
        "refused again" in answer.json()["message"]
        and "parcel.teleport" in answer.json()["message"]
    )
    [again] = await sample_engine.dead_letters()
    assert again.count == 2 and await sample_engine.history("parcel:9") == []


async def test_what_if_under_an_uploaded_chart_file(sample_engine: Engine) -> None:
    await sample_engine.publish(
        sample_engine.make_event("parcel.pack", "parcel:1", {"weight_kg": 1.0}, event_id="a")
    )
    await sample_engine.publish(  # no tracking number: the guard refuses it
        sample_engine.make_event("parcel.ship", "parcel:1", {}, event_id="b")
    )
    [_pack, ship] = await sample_engine.history("parcel:1")
    assert ship["outcome"] == "ignored"
    original = (Path(__file__).parents[2] / "engine/sample/parcel.yaml").read_text()
    lenient = original.replace("guards: [has_tracking]", "guards: []")
    assert lenient != original
    app = build_inspector(Attached(sample_engine, Presenter(show_pii=False, vault=None)))
    async with client(app) as http:
        page = await http.post(
            "/what-if",
            data={"entity": "parcel:1", "from_seq": "1"},
            files={"chart_file": ("lenient.yaml", lenient.encode(), "application/yaml")},
        )
    assert page.status_code == 200
    text = page.text
    assert "from lenient.yaml" in text
    assert f'the first at seq <a href="#wi-{ship["seq"]}">{ship["seq"]}</a>' in text
    assert "packed → shipped" in text


async def test_the_live_feed_sends_commits_resumes_and_ends_when_the_inspector_closes(
    sample_engine: Engine,
) -> None:
    import asyncio
    import json

    from adapters.http_server import HttpServer
    from engine.inspector import close_inspector

    app = Starlette()
    inspector = mount_inspector(app, sample_engine, TOKEN)
    server = await HttpServer(app, "127.0.0.1", 0).start()
    bearer = {"Authorization": f"Bearer {TOKEN}"}

    async def logged(lines: Any, count: int) -> list[dict[str, Any]]:
        found = []
        async for line in lines:
            if line.startswith("data: "):
                found.append(json.loads(line[6:]))
                if len(found) == count:
                    return found
        return found

    try:
        async with httpx.AsyncClient(base_url=server.url, headers=bearer, timeout=10) as http:
            async with http.stream("GET", "/inspector/live?after=0") as stream:
                lines = stream.aiter_lines()
                await shipped(sample_engine)  # committed after the page opened
                first, second = await asyncio.wait_for(logged(lines, 2), 10)
                assert (first["entity"], second["entity"]) == ("parcel:1", "parcel:1")
                assert "parcel.pack" in str(first["html"]) and "parcel.ship" in str(second["html"])
                close_inspector(inspector)
                rest = await asyncio.wait_for(logged(lines, 1), 5)
                assert rest == []  # the stream ended
            # A browser reconnecting says what it got last: nothing is sent twice.
            resumed = {"Last-Event-ID": str(first["seq"]), **bearer}
            inspector.state.closing.clear()
            async with http.stream("GET", "/inspector/live?after=0", headers=resumed) as again:
                [only] = await asyncio.wait_for(logged(again.aiter_lines(), 1), 10)
                assert only["seq"] == second["seq"]
                close_inspector(inspector)
    finally:
        await asyncio.wait_for(server.stop(), 10)


def test_a_postgresql_database_keeps_its_token_beside_its_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from engine.store.urls import vault_path

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    url = "postgresql://someone:secret@db.example:5433/shop"
    token, path = inspector_token(url, env={})
    assert path is not None and path.parent == Path(vault_path(url)).parent
    assert "secret" not in str(path) and path.read_text().strip() == token


async def test_a_diff_under_charts_that_did_not_log_it_says_why(
    sample_engine: Engine, db_path: Path
) -> None:
    from engine import ChartSet
    from engine.sample.shipment import chart_package as shipment_package

    await shipped(sample_engine)
    others = ChartSet.load([shipment_package()])  # no parcel chart
    store = await SQLiteStore.open_readonly(db_path)
    try:
        backend = Detached(
            store,
            others,
            Presenter(show_pii=False, vault=None),
            open_writable=lambda: SQLiteStore.open(db_path),
        )
        async with client(build_inspector(backend)) as http:
            answer = await http.get("/diff", params={"entity": "parcel:1", "seq": "1"})
        assert answer.status_code == 409 and "cannot be replayed" in answer.text
        assert "parcel" in answer.text
    finally:
        await store.close()
