"""SEC-2: the log scanner. Bodies full of personal data and secrets go through
every path of a running channel (real engine, SQLite file, receiver and both
sandboxes on loopback HTTP, the CLI as a child process); every log line, of
every level, structlog's and the stdlib's (uvicorn, httpx, aiosqlite), is
captured and searched for the markers the bodies carried. None may appear.

The markers are made to be found: a name and a street no pattern could
recognise (so they prove the call sites, not the masking), phone numbers and
emails in the formats buyers use, and the secrets the sandboxes really issue
(OAuth codes, access and refresh tokens) next to the app's own.
"""

from __future__ import annotations

import io
import json
import logging
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from typer.testing import CliRunner

from adapters.sandbox.shoplazza import PREFIX
from adapters.sandbox.story import (
    APP_KEY,
    APP_SECRET,
    CLIENT_SECRET,
    SHOP,
    SHOPLAZZA_TOKEN,
    STORE,
    Sandboxes,
    connect_shop,
)
from adapters.shoplazza.signing import webhook_signature as shoplazza_signature
from adapters.tiktok_shop.signing import webhook_signature as tiktok_signature
from engine.cli.main import build_cli
from engine.logs import configure_logging

NAME = "Quenby Marlowe"
STREET = "77 Vexhollow Lane"
CITY = "Brindlecombe"
PHONE = "+1 415-555-0142"
PHONE_LOCAL = "(+1)555-0177"
EMAIL = "quenby.marlowe@example.net"
SECRET = "hushword-Vexhollow"  # a secret a sender put where a token goes
BAD_CODE = "oauthcode-Wrexcombe"

# What must never be found: each marker and the parts a log line could cut
# out of it (the digits of a phone, a name's halves).
NEEDLES = [
    "Quenby",
    "Marlowe",
    "Vexhollow",
    CITY,
    "555-0142",
    "5550142",
    "555-0177",
    "5550177",
    "quenby.marlowe",
    "hushword",
    "Wrexcombe",
    APP_SECRET,
    CLIENT_SECRET,
    SHOPLAZZA_TOKEN,
]

ADDRESS = {
    "name": NAME,
    "phone_number": PHONE,
    "full_address": f"{STREET}, {CITY}, OR 97201",
    "address_line1": STREET,
    "postal_code": "97201",
    "region_code": "US",
}


class _Capture(logging.Handler):
    """Every stdlib record, formatted with its exception, as one line."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


class LogTap:
    """structlog's JSON lines into a buffer at DEBUG, and the stdlib's records
    at DEBUG from the root logger and uvicorn's (which does not propagate)."""

    def __init__(self) -> None:
        self.buffer = io.StringIO()
        self.stdlib = _Capture()
        self._levels: dict[str, int] = {}

    def start(self) -> None:
        configure_logging("DEBUG", json=True, stream=self.buffer)
        self.hook_stdlib()

    def hook_stdlib(self) -> None:
        """(Again after a uvicorn server starts: its config resets its loggers.)"""
        for name in ("", "uvicorn"):
            logger = logging.getLogger(name)
            self._levels.setdefault(name, logger.level)
            logger.setLevel(logging.DEBUG)
            if self.stdlib not in logger.handlers:
                logger.addHandler(self.stdlib)

    def stop(self) -> None:
        for name, level in self._levels.items():
            logging.getLogger(name).removeHandler(self.stdlib)
            logging.getLogger(name).setLevel(level)
        configure_logging("WARNING", json=True)

    def lines(self) -> list[str]:
        return self.buffer.getvalue().splitlines() + self.stdlib.lines


def leaks(lines: list[str], needles: list[str], patterns: list[re.Pattern[str]]) -> list[str]:
    found = []
    for line in lines:
        lowered = line.lower()
        hits = [n for n in needles if n.lower() in lowered]
        hits += [p.pattern for p in patterns if p.search(line)]
        if hits:
            found.append(f"{hits}: {line[:600]}")
    return found


def issued(values: Iterator[str]) -> list[re.Pattern[str]]:
    """A sandbox-issued secret (``code-12``, ``ROW_14``) as a whole word: ``ROW_1``
    must not match inside ``ROW_14``."""
    return [re.compile(rf"(?<![\w-]){re.escape(v)}(?![\w])") for v in values]


class Recording(dict[str, str]):
    """The TikTok sandbox's table of auth codes, remembering every code it issued."""

    def __init__(self) -> None:
        super().__init__()
        self.issued: list[str] = []

    def __setitem__(self, key: str, value: str) -> None:
        self.issued.append(key)
        super().__setitem__(key, value)


def tiktok_post(body: bytes, signed: bool = True) -> dict[str, Any]:
    signature = tiktok_signature(APP_KEY, APP_SECRET, body) if signed else "0" * 64
    return {"content": body, "headers": {"Authorization": signature}}


def shoplazza_post(topic: str, body: bytes) -> dict[str, Any]:
    return {
        "content": body,
        "headers": {
            "X-Shoplazza-Hmac-Sha256": shoplazza_signature(CLIENT_SECRET, body),
            "X-Shoplazza-Topic": topic,
            "X-Shoplazza-Shop-Domain": f"{STORE}.myshoplaza.com",
        },
    }


async def _refuse_orders_echoing_them(request: Request) -> Response:
    """A platform that quotes the request in its error, as real ones do."""
    order = (await request.json()).get("order") or {}
    address = json.dumps(order.get("shipping_address"))
    return JSONResponse({"errors": f"shipping_address {address} is not deliverable"}, 422)


async def _hostile_bodies(box: Sandboxes, http: httpx.AsyncClient) -> None:
    """Signed and unsigned, malformed, mistyped, refused and oversized bodies."""
    tiktok = f"{box.service.http.url}/webhooks/tiktok"
    shoplazza = f"{box.service.http.url}/webhooks/shoplazza"
    personal = {"recipient_address": ADDRESS, "buyer_email": EMAIL, "access_token": SECRET}
    malformed = (
        f'{{"type": 1, "data": {{"name": "{NAME}", "phone": "{PHONE}", "email": "{EMAIL}"'
    ).encode()
    mistyped = json.dumps(
        {
            "type": PHONE,
            "shop_id": EMAIL,
            "timestamp": NAME,
            "tts_notification_id": {"street": STREET},
            "data": personal,
        }
    ).encode()
    bad_entity = json.dumps(
        {
            "type": 1,
            "tts_notification_id": "9001",
            "shop_id": box.tiktok.shop.id,
            "timestamp": 1,
            "data": {"order_id": f"{NAME} {PHONE}", "order_status": "UNPAID", "update_time": 1},
        }
    ).encode()
    oversized = json.dumps({"type": 1, "data": [personal] * 6000}).encode()
    assert len(oversized) > 1_000_000
    answers = [
        await http.post(tiktok, **tiktok_post(malformed)),
        await http.post(tiktok, **tiktok_post(mistyped)),
        await http.post(tiktok, **tiktok_post(bad_entity)),
        await http.post(tiktok, **tiktok_post(mistyped, signed=False)),
        await http.post(tiktok, **tiktok_post(oversized)),
        await http.post(shoplazza, **shoplazza_post("products/update", malformed)),
        await http.post(
            shoplazza,
            **shoplazza_post(
                "products/update",
                json.dumps({"product": {"id": {"phone": PHONE}, "title": NAME}}).encode(),
            ),
        ),
        await http.post(
            shoplazza,
            **shoplazza_post(
                "orders/update",
                json.dumps({"order": {"note_attributes": [NAME], "fulfillments": EMAIL}}).encode(),
            ),
        ),
    ]
    # Every one was answered, none with a 5xx; the refused ones are dead letters.
    assert all(400 <= a.status_code < 500 or a.status_code == 200 for a in answers), [
        a.status_code for a in answers
    ]
    engine = box.service.engine
    await engine.publish_raw(mistyped, "scanner")
    await engine.publish_raw(malformed, "scanner")
    assert len(await engine.dead_letters()) >= 6


async def _oauth_with_a_bad_state(box: Sandboxes, http: httpx.AsyncClient) -> None:
    callback = f"{box.service.http.url}/oauth/tiktok/callback"
    for state in (f"shop:{STREET.replace(' ', '-')}", "not a shop", ""):
        await http.get(callback, params={"code": BAD_CODE, "state": state})
    await http.get(callback, params={"code": BAD_CODE})


async def _orders_full_of_personal_data(box: Sandboxes) -> None:
    """A good order whose detail (fetched from TikTok) and Shoplazza copy carry
    the markers, shipped from Shoplazza (a good orders/update webhook); then an
    order whose address Shoplazza refuses, quoting it in its error (the outbox)."""
    service = box.service
    await service.add_products(SHOP, ["1001"])
    await box.settle()
    await box.advance(2 * 3600)
    shirt = await box.tiktok_product_id("1001")
    good = box.tiktok.create_order([{"product_id": shirt, "seller_sku": "SKU-1001"}])
    good.update(recipient_address=dict(ADDRESS), buyer_email=EMAIL)
    await box.settle()
    box.tiktok.order_action(good["id"], "pay")
    await box.settle()
    await box.advance(3600)
    shoplazza_id = await box.shoplazza_order_id(good["id"])
    assert NAME in json.dumps(box.shoplazza.orders[shoplazza_id])  # the markers went through
    box.shoplazza.fulfill(shoplazza_id, "9400111899223197428490", "usps")
    await box.settle()

    routes = box.shoplazza.app.router.routes
    routes.insert(0, Route(f"{PREFIX}/orders/{{id}}", _refuse_orders_echoing_them, methods=["PUT"]))
    refused = box.tiktok.create_order([{"product_id": shirt, "seller_sku": "SKU-1001"}])
    refused.update(recipient_address=dict(ADDRESS, phone_number=PHONE_LOCAL), buyer_email=EMAIL)
    await box.settle()
    box.tiktok.order_action(refused["id"], "pay")
    await box.settle()
    await box.advance(3600)
    commands = await service.engine.store.fetchall(
        "SELECT last_error FROM outbox WHERE entity = ? AND last_error IS NOT NULL",
        (f"order:{refused['id']}",),
    )
    assert any(NAME in row[0] for row in commands)  # refused, quoting the address


async def test_no_marker_of_any_body_reaches_a_log_line_sec_2(tmp_path: Path) -> None:
    """SEC-2: good, malformed, mistyped, unsigned, oversized and dead-lettered
    webhooks, TikTok's order detail, Shoplazza's order webhook, the OAuth
    callback (a bad state, and a good flow), and an outbox command refused with
    a platform error quoting its input: no marker in any log line."""
    tap = LogTap()
    tap.start()
    box = await Sandboxes.start(tmp_path / "scanner.db")
    tap.hook_stdlib()
    codes = Recording()
    box.tiktok.codes = codes
    try:
        async with httpx.AsyncClient(timeout=30) as http:
            await _oauth_with_a_bad_state(box, http)
            await connect_shop(box)
            await _hostile_bodies(box, http)
        await _orders_full_of_personal_data(box)
        secrets = [*codes.issued, *box.tiktok.tokens, *box.tiktok.refresh_tokens]
    finally:
        await box.stop()
        tap.stop()
    assert codes.issued and box.tiktok.tokens  # the good OAuth flow ran
    lines = tap.lines()
    assert len(lines) > 100 and any('"level":"debug"' in line for line in lines)
    found = leaks(lines, NEEDLES, issued(iter(secrets)))
    assert not found, "\n".join(found[:40])


def test_the_cli_error_paths_log_no_marker_sec_2(tmp_path: Path) -> None:
    """SEC-2: `channelsync ingest` (a child process, DEBUG logs) fed a log whose
    events are malformed, mistyped or of no known type, and fed a file that is
    not a log: what it writes (logs and error messages) holds no marker."""
    log_file = tmp_path / "events.jsonl"
    personal = {"recipient_address": ADDRESS, "buyer_email": EMAIL, "access_token": SECRET}
    records = [
        {"format": "channelsync.eventlog", "version": 2},
        {
            "event_id": "e1",
            "type": "order.status_changed",
            "source": "scanner",
            "entity": f"order:{PHONE}",
            "payload": personal,
        },
        {
            "event_id": "e2",
            "type": "order.status_changed",
            "source": "scanner",
            "entity": "order:576486316948490021",
            "payload": {"order_status": {"name": NAME}, "update_time": EMAIL},
        },
        {"event_id": "e3", "type": NAME, "source": "scanner", "entity": EMAIL},
    ]
    log_file.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    done = _channelsync(tmp_path, "ingest", "--db", str(tmp_path / "cli.db"), str(log_file))
    assert done.returncode == 0 and "dead_letter 3" in done.stdout, done
    found = leaks((done.stdout + done.stderr).splitlines(), NEEDLES, [])
    assert not found, "\n".join(found)
    # A log file that is not one: the error names the file, not its content.
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(personal) + "\n")
    try:
        failed = CliRunner().invoke(
            build_cli(),
            ["--log-level", "DEBUG", "ingest", "--db", str(tmp_path / "cli.db"), str(bad)],
        )
    finally:
        configure_logging("WARNING", json=True)  # the CLI set its own
    assert failed.exit_code != 0 and "not a channelsync event log" in failed.stderr
    assert not leaks((failed.stdout + failed.stderr).splitlines(), NEEDLES, [])


CLI = "from engine.cli.main import main; main()"


def _channelsync(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", CLI, "--log-level", "DEBUG", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        env={"CHANNELSYNC_GC_TUNING": "0", "PATH": "/usr/bin:/bin"},
        check=False,
    )
