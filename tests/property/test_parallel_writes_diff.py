"""The parallel regions' write check (engine/charts/macrostep.py) finds, for
each of several moves run one after another on the same data, exactly the
top-level keys that move changed: added, removed, rebound to a value that
compares unequal, or a container left in place whose JSON changed, whatever
the moves before it did (its encodings are carried from one move to the
next)."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.charts.compared import _written_keys

KEYS = st.sampled_from(["a", "b", "c", "d"])
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-2, 2), st.sampled_from([1.0, "x"]))
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(["p", "q"]), inner, max_size=2)
    ),
    max_leaves=5,
)
# One change an action may make: rebind a key, delete it, or change a container in place.
OPS = st.tuples(st.sampled_from(["set", "delete", "append", "inner"]), KEYS, VALUES)


def apply(data: dict[str, Any], op: tuple[str, str, Any]) -> None:
    kind, key, value = op
    current = data.get(key)
    if kind == "set":
        data[key] = value
    elif kind == "delete":
        data.pop(key, None)
    elif kind == "append" and isinstance(current, list):
        current.append(value)
    elif kind == "inner" and isinstance(current, dict):
        current["p"] = value


@settings(max_examples=300)
@given(
    st.dictionaries(KEYS, VALUES, max_size=4),
    st.lists(st.lists(OPS, max_size=3), min_size=1, max_size=3),
)
def test_each_move_is_charged_with_exactly_the_keys_it_changed(start, moves):
    data = start
    before = data.copy()
    encoded = {key: _json(value) for key, value in data.items() if isinstance(value, dict | list)}
    for number, ops in enumerate(moves):
        bound = data.copy()  # the objects the move starts from
        deep = copy.deepcopy(data)  # and what they hold
        for op in ops:
            apply(data, op)
        expected = {
            key
            for key in bound.keys() | data.keys()
            if key not in bound
            or key not in data
            or (bound[key] is not data[key] and bound[key] != data[key])
            or (bound[key] is data[key] and _json(deep[key]) != _json(data[key]))
        }
        found = _written_keys(before, encoded, data, number < len(moves) - 1)
        assert found == expected
        before = data.copy()


def _json(value: Any) -> bytes:
    from pydantic_core import to_json

    return to_json(value)
