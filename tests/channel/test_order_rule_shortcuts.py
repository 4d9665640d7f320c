"""The order chart's cheap paths answer as the full rules do, for every input.

An order event's step reads the TikTok status of a configuration several
times (`lifecycle_of`, remembered per configuration) and its payload's ids
and status pass validators that return the common value at once. Each is held
here against the rule it shortens.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.charts.configuration import region_state
from statecharts import order
from statecharts.order import lifecycle_of
from statecharts.payloads import (
    _STATUS_ALIASES,
    ORDER_STATUSES,
    _exact_id,
    _id_text,
    _order_status,
    _status_named,
)

STATUS_TEXTS = [*ORDER_STATUSES, *_STATUS_ALIASES, "awaiting_shipment", " UNPAID ", "LOST", ""]
values = st.one_of(
    st.sampled_from(STATUS_TEXTS),
    st.text(max_size=6),
    st.integers(-5, 200),
    st.booleans(),
    st.floats(allow_nan=False),
    st.none(),
    st.builds(list),
)


def _answer(rule: Any, value: Any) -> tuple[str, Any]:
    try:
        result = rule(value)
    except ValueError as error:
        return "refused", str(error)
    return type(result).__name__, result


@settings(max_examples=300, deadline=None)
@given(value=values)
def test_status_and_id_validators_answer_as_in_full(value: Any) -> None:
    assert _answer(_order_status, value) == _answer(_status_named, value)
    assert _answer(_exact_id, value) == _answer(_id_text, value)


LEAVES = ["lifecycle.unpaid", "lifecycle.completed", "sync.synced", "fulfillment.pushed.sent"]
states = st.one_of(
    st.lists(st.sampled_from(LEAVES), max_size=3).map(",".join),
    st.sampled_from(["lifecycle.on_hold", "on_hold", "lifecycle", "", "lifecycle."]),
    st.text(alphabet="lifecyl.,ab", max_size=12),
)


@settings(max_examples=300, deadline=None)
@given(asked=st.lists(states, min_size=1, max_size=20))
def test_lifecycle_of_answers_as_the_configuration_says(asked: list[str]) -> None:
    for state in asked + asked:  # each asked again, after the first answer is kept
        leaf = region_state(state, "lifecycle")
        assert lifecycle_of(state) == (leaf.removeprefix("lifecycle.") if leaf else state)


def test_lifecycle_answers_kept_are_bounded() -> None:
    for n in range(3 * order._LIFECYCLES_KEPT):
        assert lifecycle_of(f"lifecycle.s{n},sync.synced") == f"s{n}"
    assert len(order._LIFECYCLES) <= order._LIFECYCLES_KEPT
    assert lifecycle_of("lifecycle.s0,sync.synced") == "s0"
