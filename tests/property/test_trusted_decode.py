"""Replay's trusted decode of a log row gives what validating it gives (issue 18).

`engine.log_decode.parse_logged_row` builds a logged event without validating its
envelope again when the row already holds exactly what validation would keep.
For any row (envelope fields at and past their limits, keys with whitespace
and look-alike characters, times as floats, integers or nothing, payloads
that validate, that a model converts and that it refuses), the event it gives
is the validated one, field for field and in the same order, with the same
fields set; or both refuse it with the same reason.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from engine.chartset import ChartSet
from engine.events import Event, EventRejected, EventTypes
from engine.log_decode import parse_logged_row
from statecharts import chart_package

CHARTS = ChartSet.load([chart_package()])
TYPES = CHARTS.event_types

texts = st.one_of(
    st.text(max_size=8),
    st.text(alphabet="ab \t\n\x1c\x85\xa0\u2028:/", max_size=8),
    st.integers(60, 66).map(lambda n: "s" * n),  # source: at most 64
    st.integers(510, 514).map(lambda n: "e" * n),  # event_id, entity: at most 512
    st.integers(-3, 3),
    st.none(),
)
keys = st.one_of(
    st.sampled_from(
        [
            "order:576653688135258178",
            "order:ü",
            "order:a b",
            "order:a\n",
            "order:a\x1c",
            "order:a\u2028",
            "order:",
            "Order:1",
            "order_2:x",
            ":1",
            "order:" + "9" * 506,
            "order:" + "9" * 507,
        ]
    ),
    st.builds(lambda kind, ident: f"{kind}:{ident}", st.from_regex(r"[a-z][a-z0-9_]{0,3}"), texts),
    texts,
)
times = st.one_of(
    st.none(),
    st.floats(allow_nan=False),
    st.integers(-(2**53), 2**53),
    st.just(True),
    st.just("1718305585"),
)
statuses = st.sampled_from(["AWAITING_SHIPMENT", "on_hold", " 111 ", "CANCEL", "LOST", 105])
ids = st.one_of(
    st.just("576653688135258178"), st.integers(0, 2**64), st.just(""), st.just(1.5), st.booleans()
)
order_payloads = st.fixed_dictionaries(
    {"order_id": ids, "order_status": statuses, "update_time": st.integers(0, 2**40)},
    optional={
        "shop_id": st.one_of(ids, st.none()),
        "is_on_hold_order": st.one_of(st.booleans(), st.just("yes")),
        "extra": st.text(max_size=4),
    },
)
payloads = st.one_of(
    order_payloads.map(json.dumps),
    st.just("{}"),
    st.just('{"timer": "t", "due_at": 1}'),
    st.just("not json"),
    st.just("[]"),
)
event_types = st.sampled_from(
    ["order.status_changed", "order.retry_sync", "order.sync_retry_due", "chart.upgraded", "x.y"]
)


def _decoded(decode: Any) -> Event | tuple[str, str | None]:
    try:
        return decode()  # type: ignore[no-any-return]
    except EventRejected as rejected:
        return rejected.reason, rejected.entity
    except ValueError as error:  # a payload of an unregistered type that is not JSON
        return type(error).__name__, str(error)


def _shape(event: Event | tuple[str, str | None]) -> Any:
    """Everything of an event a reader could tell apart."""
    if not isinstance(event, Event):
        return event
    return (
        type(event),
        [(name, type(value), value) for name, value in event.__dict__.items()],
        event.model_fields_set,
        event.__pydantic_extra__,
        event.__pydantic_private__,
        type(event.payload),
        [(name, type(value), value) for name, value in event.payload.model_dump().items()],
        event.payload.model_fields_set,
        event.model_dump_json(),
    )


def _both(
    types: EventTypes,
    event_type: str,
    envelope: tuple[Any, Any, Any, Any, Any],
    payload: str,
) -> tuple[Any, Any]:
    event_id, source, entity, occurred_at, received_at = envelope
    trusted = _decoded(
        lambda: parse_logged_row(
            types, event_type, event_id, source, entity, occurred_at, received_at, payload
        )
    )
    fields = {
        "event_id": event_id,
        "source": source,
        "entity": entity,
        "occurred_at": occurred_at,
        "received_at": received_at,
    }
    validated = _decoded(lambda: types.parse_logged(event_type, fields, payload))
    return _shape(trusted), _shape(validated)


VALID_ROW = ("bench:1:5", "bench", "order:576653688135258178", None, 1718305585.0)
VALID_PAYLOAD = (
    '{"order_id":"576653688135258178","order_status":"AWAITING_SHIPMENT",'
    '"update_time":1718305590,"is_on_hold_order":false}'
)


@st.composite
def rows(draw: st.DrawFn) -> tuple[str, tuple[Any, Any, Any, Any, Any], str]:
    """A row as the engine writes it, with none, one or a few of its fields
    replaced by anything (most rows of a real log take the trusted path)."""
    fields = list(VALID_ROW)
    generators = (texts, texts, keys, times, times)
    for index in draw(st.sets(st.integers(0, 4), max_size=3)):
        fields[index] = draw(generators[index])
    payload = draw(st.one_of(st.just(VALID_PAYLOAD), payloads))
    event_type = draw(st.one_of(st.just("order.status_changed"), event_types))
    return event_type, (fields[0], fields[1], fields[2], fields[3], fields[4]), payload


@settings(max_examples=500, deadline=None)
@given(row=rows())
@example(row=("order.status_changed", VALID_ROW, VALID_PAYLOAD))
def test_trusted_decode_is_the_validated_decode(
    row: tuple[str, tuple[Any, Any, Any, Any, Any], str],
) -> None:
    event_type, envelope, payload = row
    trusted, validated = _both(TYPES, event_type, envelope, payload)
    assert trusted == validated


@pytest.mark.parametrize(
    ("entity", "occurred_at"),
    [
        ("order:1", None),  # trusted
        ("order:1", 5),  # an integer time: validation makes it a float
        ("order:a\n", None),  # refused by the key's pattern
        ("order:" + "9" * 507, None),  # one character too long
    ],
)
def test_rows_the_trusted_path_must_not_keep_as_they_are(
    entity: str, occurred_at: int | None
) -> None:
    row = ("e1", "s", entity, occurred_at, 1.0)
    payload = '{"order_id": "1", "order_status": "UNPAID", "update_time": 1}'
    trusted, validated = _both(TYPES, "order.status_changed", row, payload)
    assert trusted == validated


def test_every_envelope_field_is_one_the_trusted_path_builds() -> None:
    # A field added to `Event` must be added to the trusted path too (or the
    # events it builds would lack it): the property above would then fail.
    assert list(Event.model_fields) == [
        "event_id",
        "type",
        "source",
        "entity",
        "occurred_at",
        "received_at",
        "payload",
    ]


def test_keys_remembered_are_bounded_and_only_those_of_the_keys_shape(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from engine import log_decode

    monkeypatch.setattr(log_decode, "_KEYS_KEPT", 8)
    monkeypatch.setattr(log_decode, "_KEYS_SEEN", set())
    payload = '{"order_id": "1", "order_status": "UNPAID", "update_time": 1}'
    for n in range(30):
        for key in (f"order:{n}", f"order:{n} x"):
            trusted, validated = _both(
                TYPES, "order.status_changed", ("e", "s", key, None, 1.0), payload
            )
            assert trusted == validated
    assert 0 < len(log_decode._KEYS_SEEN) <= 8
    assert all(" " not in key for key in log_decode._KEYS_SEEN)
