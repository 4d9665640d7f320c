"""Authenticated OAuth (CONN-7), over loopback HTTP against the TikTok sandbox,
on a real SQLite file: the nonce, the callback's refusals, tokens kept only
once the connection accepts, and the code kept out of logs, ids and keys."""

from __future__ import annotations

import asyncio
import hashlib
import io
import itertools
import json
import logging
import sqlite3
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import pytest_asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.sandbox.story import (
    APP_KEY,
    APP_SECRET,
    SHOP,
    Sandboxes,
    authorize,
    sandbox_config,
)
from adapters.tiktok_shop.credentials import CREDENTIALS, STAGED, Credentials, CredentialStore
from adapters.tiktok_shop.oauth import STATES, AuthorizationRefused
from channelsync.bootstrap import open_service
from engine.clock import SystemClock
from engine.logs import configure_logging
from engine.store.errors import StoreError
from engine.store.schema import MIGRATIONS
from engine.store.sqlite import SQLiteStore
from tests.channel.oauth_crash_child import DIED
from tests.conftest import invoke_cli

# Every table a callback could write to; "no rows written" is checked on all.
TABLES = (
    "events",
    "entities",
    "outbox",
    "timers",
    "dead_letters",
    "duplicates",
    "records",
)


# One channel for the module (starting one costs about a second): each test
# sets up a shop of its own, so the tests do not see each other's connections.
pytestmark = pytest.mark.asyncio(loop_scope="module")
_shops = itertools.count(1)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def box(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Sandboxes]:
    started = await Sandboxes.start(tmp_path_factory.mktemp("oauth") / "oauth.db")
    try:
        yield started
    finally:
        await started.stop()


@pytest.fixture
def shop() -> str:
    return f"shop:store-{next(_shops)}"


async def to_terms(box: Sandboxes, shop: str) -> None:
    """Setup up to the authorize step (CONN-2)."""
    service = box.service
    await service.merchant(
        "connection.start_setup",
        shop,
        {"store_domain": f"{shop[5:]}.myshoplaza.com", "store_country": "US"},
    )
    await service.merchant("connection.connect", shop)
    await service.merchant("connection.choose_account_type", shop, {"account_type": "seller"})
    await service.merchant("connection.accept_terms", shop, {"accepted": True})


async def approve(box: Sandboxes, url: str) -> dict[str, str]:
    """The seller approves on TikTok: the code and the state TikTok redirects with."""
    answer = await box.admin.get(url)
    assert answer.status_code == 200, answer.text
    return answer.json()


async def callback(box: Sandboxes, **params: str) -> httpx.Response:
    assert box.service.http is not None
    return await box.admin.get(f"{box.service.http.url}/oauth/tiktok/callback", params=params)


async def tokens(box: Sandboxes, shop: str) -> list[dict]:
    record = await box.service.engine.store.get_record(CREDENTIALS, shop)
    return [] if record is None else [record.value]


async def staged(box: Sandboxes, shop: str) -> list[str]:
    records = await box.service.engine.store.find_records(STAGED, where={"shop": shop})
    return [record.key for record in records]


async def nonces(box: Sandboxes, shop: str) -> list[str]:
    """Digests of the nonces issued for ``shop``."""
    records = await box.service.engine.store.find_records(STATES, where={"shop": shop})
    return [record.key for record in records]


async def authorized_events(box: Sandboxes, shop: str) -> int:
    rows = await box.service.engine.store.fetchall(
        "SELECT count(*) FROM events WHERE type = 'connection.authorized' AND entity = ?",
        (shop,),
    )
    return rows[0][0]


async def state_of(box: Sandboxes, shop: str) -> str:
    entity = await box.service.engine.entity(shop)
    assert entity is not None
    return entity.state


_COUNTS = "SELECT " + ", ".join(f"(SELECT count(*) FROM {t})" for t in TABLES)


async def counts(box: Sandboxes) -> dict[str, int]:
    [row] = await box.service.engine.store.fetchall(_COUNTS)
    return dict(zip(TABLES, row, strict=True))


async def seller_code(box: Sandboxes, state: str) -> str:
    """A genuine code for the app, as anyone who authorizes the app gets one."""
    answer = await box.admin.get(
        f"{box.servers[0].url}/oauth/authorize", params={"app_key": APP_KEY, "state": state}
    )
    return answer.json()["code"]


# ------------------------------------------------------------------ the forgery


async def test_conn7_a_code_sent_with_a_shop_key_as_state_does_not_replace_its_tokens(box, shop):
    """CONN-7: the issue's forgery. A valid code for the app, sent to the
    callback with `state` set to a connected shop's key, is refused (4xx with
    a sentence) and the shop keeps its tokens; nothing is recorded."""
    await to_terms(box, shop)
    assert (await authorize(box, shop)).status_code == 200
    before, rows = await tokens(box, shop), await counts(box)
    assert len(before) == 1

    forged = await callback(box, code=await seller_code(box, shop), state=shop)

    assert forged.status_code == 400
    assert "not one this channel issued" in forged.json()["error"]
    assert await tokens(box, shop) == before
    assert await counts(box) == rows
    assert await state_of(box, shop) == "authorized.active"


# ------------------------------------------------------------------ the nonce


async def test_conn7_the_nonce_works_once_and_is_kept_only_as_a_digest(box, shop):
    """CONN-7: begin_authorization issues a nonce bound to the shop, stored
    only as its digest; a second callback with it (replayed, with a new code)
    is refused and leaves the first grant's tokens in place."""
    await to_terms(box, shop)
    url = await box.service.begin_authorization(shop)
    query = parse_qs(urlsplit(url).query)
    assert query["app_key"] == [APP_KEY]
    [nonce] = query["state"]
    assert await nonces(box, shop) == [hashlib.sha256(nonce.encode()).hexdigest()]

    granted = await approve(box, url)
    assert granted["state"] == nonce
    first = await callback(box, **granted)
    assert first.status_code == 200
    assert first.json() == {"outcome": "transitioned", "shop": shop, "state": "authorized.active"}
    kept = await tokens(box, shop)

    replay = await callback(box, code=await seller_code(box, nonce), state=nonce)
    assert replay.status_code == 400 and "already used" in replay.json()["error"]
    assert await tokens(box, shop) == kept
    assert await authorized_events(box, shop) == 1


async def test_conn7_an_expired_nonce_is_refused_and_stores_nothing(box, shop):
    """CONN-7: the nonce expires (10 minutes by default): a callback after
    that is refused with a sentence; no tokens, the connection unchanged."""
    await to_terms(box, shop)
    assert box.service.config.oauth_state_ttl == 600
    granted = await approve(box, await box.service.begin_authorization(shop))
    box.clock.advance(601)
    late = await callback(box, **granted)
    assert late.status_code == 400 and "expired" in late.json()["error"]
    assert await tokens(box, shop) == []
    assert await state_of(box, shop) == "terms_accepted"


async def test_conn7_two_callbacks_with_one_nonce_only_one_wins(box, shop):
    """CONN-7: the nonce is spent atomically. Two callbacks carrying the same
    nonce at once (the seller approved twice): exactly one is accepted."""
    await to_terms(box, shop)
    url = await box.service.begin_authorization(shop)
    one, two = await approve(box, url), await approve(box, url)
    answers = await asyncio.gather(callback(box, **one), callback(box, **two))
    assert sorted(a.status_code for a in answers) == [200, 400]
    assert len(await tokens(box, shop)) == 1
    assert await authorized_events(box, shop) == 1


async def test_conn7_authorization_starts_only_from_a_shop_at_the_authorize_step(box, shop):
    """CONN-7: an unknown shop, or one before the terms, cannot start an
    authorization; the refusal says why and no nonce is issued."""
    with pytest.raises(AuthorizationRefused, match="start setup"):
        await box.service.begin_authorization(shop)
    await box.service.merchant(
        "connection.start_setup", shop, {"store_domain": "d", "store_country": "US"}
    )
    with pytest.raises(AuthorizationRefused, match="accept TikTok's data-usage terms"):
        await box.service.begin_authorization(shop)
    assert await nonces(box, shop) == []


# ------------------------------------------------------------------ odd input


ODD_STATES = [
    "None",
    "x" * 10_000,
    "ünïcødé ☃ \U0001d530\u0301",
    "shop:x'--",
    "shop:x'); DROP TABLE records; --",
    "\x00\x01",
    "A" * 43,  # the shape of a nonce, never issued
    "{shop}",  # the shop's own key
]


@pytest.mark.parametrize("state", ODD_STATES, ids=range(len(ODD_STATES)))
async def test_conn7_odd_states_get_a_4xx_and_write_no_rows(box, shop, state):
    """CONN-7: states that are no live nonce (the issue's `None`, 10k
    characters, unicode, `shop:x'--`, a shop key) are refused with a 4xx and a
    sentence, never a 5xx, and no row is written anywhere."""
    await to_terms(box, shop)
    rows = await counts(box)
    code = await seller_code(box, "anything")
    answer = await callback(box, code=code, state=state.replace("{shop}", shop))
    assert 400 <= answer.status_code < 500
    assert answer.json()["error"]
    assert await counts(box) == rows


DRAWN_STATES = st.one_of(
    st.text(max_size=300),
    st.from_regex(r"[A-Za-z0-9_-]{43}", fullmatch=True),  # shaped like a nonce
    st.binary(max_size=200).map(lambda raw: raw.decode("latin-1")),
    st.sampled_from(["None", "null", "%00", "shop:x'--", "x" * 10_000]),
)
DRAWN_CODES = st.one_of(st.none(), st.text(max_size=700))
_live: dict[str, dict[str, str]] = {}


@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(state=DRAWN_STATES, code=DRAWN_CODES)
async def test_conn7_any_state_but_a_live_nonce_is_a_4xx_and_writes_nothing(box, shop, state, code):
    """CONN-7, for all inputs: over drawn states (any text, nonce-shaped
    strings, raw bytes) and codes (none, long, any text), with a live nonce
    issued for the shop meanwhile, every callback is a 4xx with a sentence and
    no row of any table changes; the live nonce still works afterwards (the
    last test of this module spends it)."""
    if shop not in _live:
        await to_terms(box, shop)
        _live[shop] = await approve(box, await box.service.begin_authorization(shop))
    before = await counts(box)
    params = {"state": state} if code is None else {"state": state, "code": code}
    answer = await callback(box, **params)
    assert 400 <= answer.status_code < 500, (answer.status_code, answer.text)
    assert answer.json()["error"]
    assert await counts(box) == before


async def test_conn7_the_live_nonce_survives_the_drawn_callbacks(box):
    """CONN-7: after the drawn callbacks above, the shop's live nonce still
    completes its authorization."""
    if not _live:  # run on its own: a shop and a nonce of its own
        await to_terms(box, "shop:drawn")
        _live["shop:drawn"] = await approve(
            box, await box.service.begin_authorization("shop:drawn")
        )
    [(shop, granted)] = _live.items()
    assert (await callback(box, **granted)).status_code == 200
    assert await state_of(box, shop) == "authorized.active"


async def test_conn7_a_missing_code_or_state_and_a_refused_code_are_4xx(box, shop):
    """CONN-7: a callback without code or state, with a malformed code, or with
    a code TikTok refuses (unknown) is a 4xx with a sentence; nothing stored."""
    await to_terms(box, shop)
    granted = await approve(box, await box.service.begin_authorization(shop))
    for params in ({}, {"state": granted["state"]}, {"code": granted["code"]}):
        answer = await callback(box, **params)
        assert answer.status_code == 400 and "code and state" in answer.json()["error"]
    long_code = await callback(box, code="c" * 600, state=granted["state"])
    assert long_code.status_code == 400 and "not one TikTok issues" in long_code.json()["error"]
    refused = await callback(box, code="not-a-code", state=granted["state"])
    assert refused.status_code == 400
    assert "TikTok refused the authorization" in refused.json()["error"]
    assert await tokens(box, shop) == [] and await staged(box, shop) == []


async def test_conn7_tiktok_unreachable_is_a_502_with_a_sentence(box, shop):
    """CONN-7: when TikTok cannot be reached to trade the code the callback
    answers 502 (not 500) and says to start again."""
    await to_terms(box, shop)
    granted = await approve(box, await box.service.begin_authorization(shop))
    auth_url = box.service.tiktok.auth_url
    box.service.tiktok.auth_url = "http://127.0.0.1:9"  # the discard port: nothing listens
    try:
        answer = await callback(box, **granted)
    finally:
        box.service.tiktok.auth_url = auth_url
    assert answer.status_code == 502 and "start the authorization again" in answer.json()["error"]
    assert await tokens(box, shop) == []


async def test_conn7_a_store_that_fails_during_the_callback_is_a_503_with_a_sentence(
    box, shop, monkeypatch
):
    """CONN-7: when the engine cannot record the authorization (its writer is
    down: `publish` raises StoreError), the callback answers 503, says what to
    do, and the shop gets no tokens."""
    await to_terms(box, shop)
    granted = await approve(box, await box.service.begin_authorization(shop))

    async def writer_down(_event: object) -> None:
        raise StoreError("the writer process is gone")

    monkeypatch.setattr(box.service.engine, "publish", writer_down)
    answer = await callback(box, **granted)
    monkeypatch.undo()
    assert answer.status_code == 503
    assert "database is unavailable" in answer.json()["error"]
    assert await tokens(box, shop) == []
    assert await state_of(box, shop) == "terms_accepted"


# ------------------------------------------------------------------ the chart decides


async def test_conn7_tokens_are_not_stored_when_the_connection_refuses(box, shop):
    """CONN-7: the shop was at the authorize step when authorization began,
    but the merchant disconnected before TikTok called back: the chart refuses
    the authorization, the callback answers 409 with the chart's reason, and
    no token is kept (nor staged)."""
    await to_terms(box, shop)
    granted = await approve(box, await box.service.begin_authorization(shop))
    await box.service.merchant("connection.disconnected", shop)
    assert await state_of(box, shop) == "not_connected"

    answer = await callback(box, **granted)
    assert answer.status_code == 409
    assert "accept TikTok's data-usage terms" in answer.json()["error"]
    assert await tokens(box, shop) == [] and await staged(box, shop) == []


async def test_conn7_a_shop_outside_the_us_is_refused_and_keeps_no_tokens(box, shop):
    """CONN-1, CONN-7: TikTok answers for a shop based in Great Britain; the
    chart refuses it and the traded tokens are dropped."""
    await to_terms(box, shop)
    granted = await approve(box, await box.service.begin_authorization(shop))
    box.tiktok.shop.region = "GB"
    try:
        answer = await callback(box, **granted)
    finally:
        box.tiktok.shop.region = "US"
    assert answer.status_code == 409 and "only US TikTok Shops" in answer.json()["error"]
    assert await tokens(box, shop) == [] and await staged(box, shop) == []


# ------------------------------------------------------------------ the code stays secret


def _cells(path: Path) -> list[str]:
    with sqlite3.connect(path) as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return [
            str(value)
            for table in tables
            for row in db.execute(f"SELECT * FROM {table}")
            for value in row
        ]


async def test_conn7_the_code_never_reaches_logs_events_ids_or_keys(box, shop, caplog):
    """CONN-7: through an accepted, a replayed and a refused (by TikTok)
    callback, at DEBUG, the OAuth code and the nonce appear in no log line
    (structlog or the standard library's), and nowhere in the database: not in
    events, ids, outbox idempotency keys, or any other cell."""
    stream = io.StringIO()
    configure_logging("DEBUG", json=True, stream=stream)
    caplog.set_level(logging.DEBUG)
    try:
        await to_terms(box, shop)
        granted = await approve(box, await box.service.begin_authorization(shop))
        assert (await callback(box, **granted)).status_code == 200
        assert (await callback(box, **granted)).status_code == 400  # replayed
        again = await approve(box, await box.service.begin_authorization(shop))
        box.tiktok.codes.pop(again["code"])  # TikTok no longer knows the code
        assert (await callback(box, **again)).status_code == 400
        await box.settle()
    finally:
        configure_logging("WARNING", json=True)
    secrets = (granted["code"], granted["state"], again["code"], again["state"])
    lines = stream.getvalue() + "\n".join(r.getMessage() for r in caplog.records)
    assert "shop authorized" in lines, "the capture saw the flow"
    for secret in secrets:
        assert secret not in lines
    cells = _cells(box.service.config.db)
    assert any(cell.startswith(f"oauth:{shop}:") for cell in cells), "the event id is there"
    for secret in secrets:
        assert not any(secret in cell for cell in cells)
    keys = await box.service.engine.store.fetchall(
        "SELECT idempotency_key FROM outbox WHERE entity = ?", (shop,)
    )
    assert keys and not any(granted["code"] in key for (key,) in keys)


# ------------------------------------------------------------------ a crash between the two


async def test_conn7_a_process_killed_between_commit_and_save_gets_its_tokens_at_next_open(
    box, tmp_path
):
    """CONN-7: a child process authorizes a shop and dies (os._exit, no
    clean-up) right after the authorization is committed, before its staged
    tokens are promoted. At the next open the staged tokens become the shop's,
    since their event transitioned the connection; tokens staged for an event
    that was never recorded are dropped."""
    db = tmp_path / "crash.db"
    tiktok_url, shoplazza_url = (server.url for server in box.servers)
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.channel.oauth_crash_child",
        str(db),
        tiktok_url,
        shoplazza_url,
        str(box.clock.now()),
        SHOP,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(child.communicate(), timeout=60)
    assert child.returncode == DIED, (out, err[-2000:])

    config = sandbox_config(db, tiktok_url, shoplazza_url, 50.0)
    charts = box.service.engine.charts
    count = "SELECT count(*) FROM records WHERE namespace = ?"
    with sqlite3.connect(db) as raw:
        assert raw.execute(count, (CREDENTIALS,)).fetchone() == (0,)
        assert raw.execute(count, (STAGED,)).fetchone() == (1,)
        orphan = {
            "shop": "shop:other",
            "tiktok_shop_id": "1",
            "shop_cipher": "c",
            "access_token": "ROW_x",
            "access_token_expire_in": 1,
            "refresh_token": "RFR_x",
            "refresh_token_expire_in": 2,
        }
        raw.execute(
            "INSERT INTO records (namespace, key, value, stored_at) VALUES (?, ?, ?, 0.0)",
            (STAGED, "oauth:never-recorded", json.dumps(orphan)),
        )

    reopened = await open_service(
        config, clock=box.clock, run_loops=False, plugins=[], charts=charts
    )
    try:
        assert (await reopened.engine.entity(SHOP)).state == "authorized.active"
        kept = await reopened.tiktok.credentials.get(SHOP)
        assert kept is not None and kept.access_token in box.tiktok.tokens
        assert await reopened.engine.store.find_records(STAGED) == []
        assert await reopened.tiktok.credentials.get("shop:other") is None
    finally:
        await reopened.stop()


# ------------------------------------------------------------------ the CLI and the sandbox


async def test_conn7_shop_authorize_prints_the_url_and_its_nonce_completes_while_serve_runs(
    box, shop, monkeypatch
):
    """CONN-7: `channelsync shop authorize --db PATH SHOP`, run beside the
    serving channel on its file, prints TikTok's authorize URL; the seller's
    approval of it completes the authorization. A shop before the terms, or a
    missing app key, is refused with exit 2 and a sentence."""
    db = str(box.service.config.db)
    monkeypatch.setenv("TIKTOK_APP_KEY", APP_KEY)
    monkeypatch.setenv("TIKTOK_AUTH_URL", box.servers[0].url)
    # The channel here runs on a fake clock; the CLI reads the system's.
    monkeypatch.setattr(SystemClock, "now", lambda _self: box.clock.now())
    early = await invoke_cli("shop", "authorize", "--db", db, shop)
    assert early.exit_code == 2 and "start setup" in early.output

    await to_terms(box, shop)
    printed = await invoke_cli("shop", "authorize", "--db", db, shop, "--ttl", "120")
    assert printed.exit_code == 0, printed.output
    url = printed.output.strip()
    assert url.startswith(f"{box.servers[0].url}/oauth/authorize?app_key={APP_KEY}&state=")
    [nonce] = parse_qs(urlsplit(url).query)["state"]
    issued = await box.service.engine.store.get_record(
        STATES, hashlib.sha256(nonce.encode()).hexdigest()
    )
    assert issued is not None and issued.expires_at is not None and issued.stored_at is not None
    assert issued.expires_at - issued.stored_at == 120
    assert (await callback(box, **await approve(box, url))).status_code == 200
    assert await state_of(box, shop) == "authorized.active"

    monkeypatch.delenv("TIKTOK_APP_KEY")
    keyless = await invoke_cli("shop", "authorize", "--db", db, shop)
    assert keyless.exit_code == 2 and "TIKTOK_APP_KEY" in keyless.output


async def test_conn7_the_sandbox_codes_are_for_the_app_live_30_minutes_and_work_once(box):
    """CONN-7: the TikTok sandbox authorizes only its app, and its codes, like
    TikTok's, trade once and within 30 minutes."""
    base = box.servers[0].url
    wrong = await box.admin.get(f"{base}/oauth/authorize", params={"app_key": "x", "state": "s"})
    assert wrong.status_code == 400
    no_state = await box.admin.get(f"{base}/oauth/authorize", params={"app_key": APP_KEY})
    assert no_state.status_code == 400

    async def trade(code: str) -> int:
        answer = await box.admin.get(
            f"{base}/api/v2/token/get",
            params={
                "app_key": APP_KEY,
                "app_secret": APP_SECRET,
                "auth_code": code,
                "grant_type": "authorized_code",
            },
        )
        return answer.json()["code"]

    fresh, stale = await seller_code(box, "s"), await seller_code(box, "s")
    assert await trade(fresh) == 0
    assert await trade(fresh) == 36009004, "a code works once"
    box.clock.advance(30 * 60 + 1)
    assert await trade(stale) == 36009004, "a code lives 30 minutes"


# ------------------------------------------------------------------ a database from before records


def _database_before_records(path: Path) -> None:
    """A file as the channel left it before the records table: its migrations,
    then tokens, staged tokens and nonces written as that version wrote them."""
    upto = next(i for i, m in enumerate(MIGRATIONS) if "CREATE TABLE records" in m)
    columns = (
        "shop, tiktok_shop_id, shop_cipher, access_token, access_token_expire_in,"
        " refresh_token, refresh_token_expire_in"
    )
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        for version, migration in enumerate(MIGRATIONS[:upto], start=1):
            db.executescript(migration)
            db.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
        db.execute(
            f"INSERT OR REPLACE INTO tiktok_credentials ({columns}) VALUES (?,?,?,?,?,?,?)",
            ("shop:kept", "7494", "cipher", "ROW_kept", 1700000000, "RFR_kept", 1800000000),
        )
        db.execute(
            f"INSERT OR REPLACE INTO tiktok_credentials_staged (event_id, {columns}, staged_at)"
            " VALUES (?,?,?,?,?,?,?,?,?)",
            ("oauth:shop:kept:1", "shop:kept", "7494", "c2", "ROW_new", 5, "RFR_new", 6, 40.0),
        )
        db.execute(
            "INSERT INTO oauth_states (digest, shop, issued_at, expires_at, used_at)"
            " VALUES (?,?,?,?,?)",
            ("d-live", "shop:kept", 10.0, 610.0, None),
        )
        db.execute(
            "INSERT INTO oauth_states (digest, shop, issued_at, expires_at, used_at)"
            " VALUES (?,?,?,?,?)",
            ("d-used", "shop:kept", 10.0, 610.0, 20.0),
        )


async def test_conn7_an_existing_database_keeps_its_tokens_staged_tokens_and_nonces(tmp_path):
    """CONN-7: a database from before the records table is upgraded on open:
    the shop's tokens, the tokens staged for an authorization and the issued
    nonces (spent or not) are where the adapter now reads them, as they were;
    the old tables are gone, so tokens are kept in one place only."""
    db = tmp_path / "before.db"
    _database_before_records(db)
    store = await SQLiteStore.open(db)
    try:
        credentials = CredentialStore(store)
        kept = await credentials.get("shop:kept")
        assert kept == Credentials(
            "shop:kept", "7494", "cipher", "ROW_kept", 1700000000, "RFR_kept", 1800000000
        )
        assert await credentials.by_tiktok_shop("7494") == kept
        assert [r.key for r in await store.find_records(STAGED)] == ["oauth:shop:kept:1"]
        assert await credentials.promote("oauth:shop:kept:1")
        assert (await credentials.get("shop:kept")).access_token == "ROW_new"
        assert (await store.use_record(STATES, "d-used", 30.0))[0] == "used"
        verdict, nonce = await store.use_record(STATES, "d-live", 30.0)
        assert verdict == "live" and nonce is not None and nonce.value == {"shop": "shop:kept"}
        assert (nonce.stored_at, nonce.expires_at) == (10.0, 610.0)
    finally:
        await store.close()
    with sqlite3.connect(db) as raw:
        tables = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert not tables & {"tiktok_credentials", "tiktok_credentials_staged", "oauth_states"}
