"""Secrets and personal data never reach a log line."""

from __future__ import annotations

import io
import json
import logging
from typing import Any, Literal

import pytest
import structlog
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import field_validator

from adapters.base import InboundRejected, rejection_reason
from adapters.shoplazza.client import ShoplazzaError
from engine import ChartPackage, ChartSet, Engine, Rules
from engine.events import EventRejected, EventTypes, Payload, loggable_entity
from engine.logs import configure_logging, error_fields, text_digest
from engine.scrub import mask
from engine.settings import EngineSettings


def test_tokens_secrets_and_addresses_are_redacted():
    stream = io.StringIO()
    configure_logging("INFO", json=True, stream=stream)
    try:
        structlog.get_logger("t").info(
            "token refreshed",
            entity="shop:1",
            access_token="ROW_secret_token",
            payload={
                "app_secret": "s3cr3t",
                "recipient_address": {"name": "Ada"},
                "nested": [{"refresh_token": "r"}],
                "order_id": "576",
            },
            sign="abcdef",
        )
    finally:
        configure_logging("WARNING", json=True)
    line = stream.getvalue()
    record = json.loads(line)
    for secret in ("ROW_secret_token", "s3cr3t", "Ada", "abcdef"):
        assert secret not in line
    assert record["payload"]["order_id"] == "576"
    assert record["entity"] == "shop:1"


# ---------------------------------------------------------------- SEC-2

MARK = "ZQ"  # uppercase: never the shape of a field name or an event type


class _Detail(Payload):
    order_id: int
    status: Literal["UNPAID", "PAID"]
    counts: dict[str, int] = {}
    note: str = ""

    code: str = ""

    @field_validator("note")
    @classmethod
    def _plain(cls, value: str) -> str:
        if value:
            raise ValueError(f"unexpected note {value!r}")  # a validator quoting input
        return value

    @field_validator("code")
    @classmethod
    def _digits(cls, value: str) -> str:
        if value and not value.isdigit():
            raise ValueError("a code is digits only")  # its own words, no value
        return value


_TYPES = EventTypes()
_TYPES.register("order.detailed", _Detail)
_TYPES.register("order.other")


@settings(max_examples=100, deadline=None)
@given(text=st.text(min_size=0, max_size=40), where=st.sampled_from(range(6)))
def test_validation_reasons_never_quote_the_values_sent_sec_2(text: str, where: int) -> None:
    """SEC-2: whatever value fails validation, wherever it sits (a mistyped
    field, a literal, a validator that quotes it, a dict key, the event type,
    the entity), the reason names the place and the error type, not the value."""
    value = f"{MARK}{text}{MARK}"
    payload: dict[str, Any] = {"order_id": 1, "status": "PAID"}
    document: dict[str, Any] = {"event_id": "e", "type": "order.detailed", "source": "s"}
    document["entity"] = "order:1"
    if where == 0:
        payload["order_id"] = value
    elif where == 1:
        payload["status"] = value
    elif where == 2:
        payload["note"] = value
    elif where == 3:
        payload["counts"] = {value: "many"}
    elif where == 4:
        document["type"] = value
    else:
        document["entity"] = f"order:{value} x"
    document["payload"] = payload
    for parse in (_TYPES.parse, lambda d: _TYPES.parse_json(json.dumps(d))):
        with pytest.raises(EventRejected) as rejected:
            parse(document)
        assert MARK not in rejected.value.reason
        assert rejected.value.reason  # still says what is wrong


def test_validation_reasons_name_the_field_and_the_error_type_sec_2() -> None:
    with pytest.raises(EventRejected) as rejected:
        _TYPES.parse(
            {
                "event_id": "e",
                "type": "order.detailed",
                "source": "s",
                "entity": "order:1",
                "payload": {"order_id": "+1 415-555-0142", "note": "Quenby", "code": "Q-7"},
            }
        )
    reason = rejected.value.reason
    assert "order.detailed.payload.order_id: Input should be a valid integer" in reason
    assert "(int_parsing)" in reason
    assert "order.detailed.payload.status: Field required (missing)" in reason
    assert "order.detailed.payload.note: value_error" in reason
    assert "payload.code: Value error, a code is digits only (value_error)" in reason
    assert "555" not in reason and "Quenby" not in reason


def test_a_rejection_keeps_its_own_reason_and_only_the_type_of_anything_else_sec_2() -> None:
    assert rejection_reason(InboundRejected("no order id")) == "no order id"
    leaked = ValueError("invalid literal for int() with base 10: 'Quenby Marlowe'")
    assert rejection_reason(leaked) == "ValueError while reading the body"
    assert "Quenby" not in rejection_reason(KeyError("Quenby Marlowe"))


def test_a_dead_letters_entity_is_logged_only_with_an_entity_keys_shape_sec_2() -> None:
    assert loggable_entity("order:576486316948490021") == "order:576486316948490021"
    assert loggable_entity(None) is None
    for odd in ("order:Quenby Marlowe", "+1 415-555-0142", "order:" + "9" * 300):
        assert loggable_entity(odd) == "[not an entity key]"


_PHONES = st.builds(
    lambda c, a, b, n, f: f.format(c=c, a=a, b=b, n=n),
    st.sampled_from(["1", "44", "86"]),
    st.integers(200, 999),
    st.integers(200, 999),
    st.integers(0, 9999).map(lambda n: f"{n:04d}"),
    st.sampled_from(
        ["+{c} {a} {b} {n}", "+{c}-{a}-{b}-{n}", "({a}) {b}-{n}", "{a}-{b}-{n}", "(+{c}){b}-{n}"]
    ),
)
_EMAILS = st.builds(
    lambda user, host: f"{user}@{host}.example",
    st.from_regex(r"[a-z][a-z0-9._+]{0,15}[a-z0-9]", fullmatch=True),
    st.from_regex(r"[a-z][a-z0-9-]{0,10}[a-z0-9]", fullmatch=True),
)
_TOKENS = st.text(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", min_size=40
).filter(lambda t: any(c.isdigit() for c in t) and any(c.isalpha() for c in t))
_AROUND = st.sampled_from(["{}", "reason: {} (again)", "x={}", "'{}'", "[{}]", "{}\n"])


@settings(max_examples=100, deadline=None)
@given(secret=st.one_of(_PHONES, _EMAILS, _TOKENS), around=_AROUND)
def test_emails_phones_and_tokens_are_masked_wherever_they_sit_sec_2(
    secret: str, around: str
) -> None:
    """SEC-2: the last line of defence masks them under any key, in any text."""
    masked = mask(around.format(secret))
    assert secret not in masked
    assert "[email]" in masked or "[phone]" in masked or "[token]" in masked


@settings(max_examples=100, deadline=None)
@given(
    kept=st.one_of(
        st.integers(1, 10**19).map(str),
        st.integers(1, 10**19).map(lambda n: f"order:{n}"),
        st.integers(1, 10**19).map(lambda n: f"/product/202309/products/{n}/activate"),
        st.uuids().map(str),
        st.datetimes().map(lambda d: d.isoformat() + "Z"),
        st.floats(0, 2e9, allow_nan=False).map(str),
        st.binary(min_size=32, max_size=32).map(lambda b: "tiktok:sha256:" + b.hex()),
        st.from_regex(r"[a-z]+(\.[a-z_]+){1,3}", fullmatch=True),
    )
)
def test_ids_times_and_numbers_are_left_alone_sec_2(kept: str) -> None:
    """What the logs need to stay useful is not mistaken for personal data."""
    assert mask(kept) == kept


def test_the_masking_applies_to_every_string_of_a_line_and_to_exceptions_sec_2() -> None:
    stream = io.StringIO()
    configure_logging("DEBUG", json=True, stream=stream)
    try:
        log = structlog.get_logger("t")
        log.warning("a reason", reason="call +1 415-555-0142", context={"who": "q@example.net"})
        try:
            raise ValueError("no route to ada.lovelace@example.org")
        except ValueError:
            log.exception("failed", entity="order:576486316948490021")
    finally:
        configure_logging("WARNING", json=True)
    text = stream.getvalue()
    assert "555-0142" not in text and "@example" not in text
    first, second = (json.loads(line) for line in text.splitlines())
    assert first["reason"] == "call [phone]" and first["context"] == {"who": "[email]"}
    assert "[email]" in second["exception"] and second["entity"] == "order:576486316948490021"


def test_error_fields_carry_no_text_and_tie_the_line_to_it_sec_2() -> None:
    error = ShoplazzaError(422, '{"errors": "address 77 Vexhollow Lane is not deliverable"}')
    fields = error_fields(error, f"ShoplazzaError: {error}")
    assert "Vexhollow" not in json.dumps(fields)
    assert fields["error_type"] == "ShoplazzaError" and fields["error_code"] == 422
    assert fields["error_digest"] == text_digest(f"ShoplazzaError: {error}")


def test_http_client_and_sqlite_records_stay_out_of_a_debug_stdlib_log_sec_2() -> None:
    """A host that sets the stdlib's root logger to DEBUG gets no request URLs
    (TikTok's token call carries the app secret and the code in its query) and
    no SQL parameters."""
    captured: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            captured.append(record.getMessage())

    root, handler = logging.getLogger(), Keep(logging.DEBUG)
    level = root.level
    configure_logging("WARNING", json=True)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        logging.getLogger("httpx").info("GET /token/get?app_secret=s3cr3t&auth_code=c0de")
        logging.getLogger("aiosqlite").debug("executing INSERT ... ('Quenby Marlowe',)")
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    assert captured == []


class _Note(Payload):
    note: str = ""


async def test_a_step_that_fails_quoting_its_payload_logs_a_digest_sec_2(tmp_path, clock) -> None:
    """SEC-2: a chart's guard that raises with the payload's value in its text
    gives the event an error outcome whose reason keeps the text (the event
    log is where it belongs), while the WARNING line carries its digest."""
    rules = Rules()
    rules.event("memo.add", _Note)

    @rules.guard("readable", refusal="unreadable")
    def readable(ctx: Any) -> bool:
        if ctx.payload.note.startswith("Q"):
            raise ValueError(f"cannot read note {ctx.payload.note!r}")
        if ctx.payload.note.startswith("B"):
            raise ValueError("the notes service is down")
        return True

    (tmp_path / "memo.yaml").write_text(
        "name: memo\nentity_kind: memo\ninitial: a\nstates: {a: {label: A}}\n"
        "events: [memo.add]\ntransitions:\n  - {event: memo.add, source: a, guards: [readable]}\n"
    )
    charts = ChartSet.load([ChartPackage.from_directory("m", tmp_path, rules)])
    stream = io.StringIO()
    configure_logging("INFO", json=True, stream=stream)
    engine = await Engine.open(
        tmp_path / "memo.db",
        charts=charts,
        clock=clock,
        settings=EngineSettings(run_timers=False, run_outbox=False),
    )
    try:
        quoting = await engine.publish(
            engine.make_event("memo.add", "memo:1", {"note": "Quenby Marlowe"}, event_id="m1")
        )
        plain = await engine.publish(
            engine.make_event("memo.add", "memo:2", {"note": "Bob"}, event_id="m2")
        )
    finally:
        await engine.stop()
        configure_logging("WARNING", json=True)
    assert quoting.outcome == plain.outcome == "error"
    assert "Quenby Marlowe" in (quoting.reason or "")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    failed = {line["entity"]: line for line in lines if line["event"] == "error"}
    assert "Quenby" not in stream.getvalue()
    assert failed["memo:1"]["reason_digest"] == text_digest(quoting.reason or "")
    assert failed["memo:2"]["reason"] == plain.reason


def test_exceptions_printed_by_uvicorn_or_asyncio_are_masked_too_sec_2() -> None:
    """SEC-2: uvicorn prints the traceback of a route that raised through its
    own handler, outside structlog: its records are masked all the same."""
    captured: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            captured.append(logging.Formatter().format(record))

    configure_logging("WARNING", json=True)
    logger, handler = logging.getLogger("uvicorn.error"), Keep(logging.DEBUG)
    logger.addHandler(handler)
    try:
        try:
            raise RuntimeError("TikTok refused code for ada@example.org, +1 415-555-0142")
        except RuntimeError:
            logger.exception("Exception in ASGI application %s", "from ada@example.org")
    finally:
        logger.removeHandler(handler)
    text = "\n".join(captured)
    assert "RuntimeError" in text and "[email]" in text and "[phone]" in text
    assert "ada@example.org" not in text and "555-0142" not in text
