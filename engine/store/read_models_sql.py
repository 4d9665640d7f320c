"""Equality filters on a JSON column, written once for every read model.

A filter names a field of the JSON data by a dotted path (``sync.status``)
and the value it must hold. Values compare as JSON values: a string matches
only a string, a number only a number of the same value (``1`` and ``1.0``
alike), ``True``/``False`` only that JSON boolean, and ``None`` a field that
is null or missing. A path through something that is not an object finds
nothing, as a missing field.

`ActiveState` filters the stored configuration (the ``state`` column) by one
state being active in it: an atomic state or any of its ancestors
(``sync`` and ``sync.failed`` both find ``lifecycle.paid,sync.failed``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Scalar = str | int | float | bool | None

# Paths are bound as parameters, never spliced into SQL; the shape keeps a
# path meaning one thing (no quoting, no array indexes).
_SEGMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_INT64 = (-(2**63), 2**63 - 1)


@dataclass(frozen=True)
class Equals:
    """A field's wanted value, with how a missing field and case count.

    ``missing`` is what a null or missing field counts as (so
    ``Equals("not_synced", missing="not_synced")`` also finds orders with no
    sync status yet). ``any_case`` compares strings with ASCII letters in any
    case, as SQLite's ``lower`` does."""

    value: Scalar
    missing: Scalar = None
    any_case: bool = False


Where = Mapping[str, Scalar | Equals]


def json_path(path: str) -> str:
    """``sync.status`` -> ``$.sync.status``; ValueError for any other shape."""
    segments = path.split(".")
    if not all(_SEGMENT.fullmatch(segment) for segment in segments):
        raise ValueError(f"a field path is dotted names (like 'sync.status'), not {path!r}")
    return "$." + path


def _check(value: Scalar) -> None:
    """A value SQLite compares exactly as JSON, else ValueError or TypeError."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return
    if isinstance(value, int):
        if not _INT64[0] <= value <= _INT64[1]:
            raise ValueError(f"{value} is outside the 64-bit integers a filter compares")
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value} is no JSON number")
        return
    raise TypeError(f"a filter compares strings, numbers, booleans or None, not {value!r}")


def _present_clause(column: str, target: str, spec: Equals) -> tuple[str, list[Any]]:
    """SQL true when the field at ``target`` holds ``spec.value`` as JSON.
    The comparison comes first: SQLite stops at a false AND, so only rows that
    compare equal pay for parsing the JSON again to check the type."""
    value = spec.value
    if isinstance(value, bool):
        return f"json_type({column}, ?) = '{'true' if value else 'false'}'", [target]
    extract = f"json_extract({column}, ?)"
    if isinstance(value, str):
        compare = f"lower({extract}) = lower(?)" if spec.any_case else f"{extract} = ?"
        return f"({compare} AND json_type({column}, ?) = 'text')", [target, value, target]
    return (
        f"({extract} = ? AND json_type({column}, ?) IN ('integer', 'real'))",
        [target, value, target],
    )


def _missing_counts(spec: Equals) -> bool:
    """Whether a null or missing field matches: what it counts as equals the value."""
    if spec.any_case and isinstance(spec.missing, str) and isinstance(spec.value, str):
        return _ascii_lower(spec.missing) == _ascii_lower(spec.value)
    return same_json(spec.missing, spec.value)


# A dialect's SQL for one filter's parts: (column, "$.a.b", spec) for a
# present field, (column, "$.a.b") for a null or missing one.
PresentSQL = Callable[[str, str, Equals], tuple[str, list[Any]]]
MissingSQL = Callable[[str, str], tuple[str, list[Any]]]


def _missing_clause(column: str, target: str) -> tuple[str, list[Any]]:
    return f"coalesce(json_type({column}, ?), 'null') = 'null'", [target]


def field_clause(
    column: str,
    path: str,
    wanted: Scalar | Equals,
    *,
    present: PresentSQL = _present_clause,
    missing: MissingSQL = _missing_clause,
) -> tuple[str, list[Any]]:
    """One filter as SQL over ``column`` and its parameters (SQLite's SQL
    unless another store gives its ``present`` and ``missing`` clauses)."""
    spec = wanted if isinstance(wanted, Equals) else Equals(wanted)
    target = json_path(path)
    _check(spec.value)
    _check(spec.missing)
    parts: list[str] = []
    params: list[Any] = []
    if spec.value is not None:  # a present, non-null field never equals None
        sql, more = present(column, target, spec)
        parts.append(sql)
        params += more
    if _missing_counts(spec):
        sql, more = missing(column, target)
        parts.append(sql)
        params += more
    if not parts:
        return "1 = 0", []
    return "(" + " OR ".join(parts) + ")", params


def where_clause(
    column: str,
    where: Where | None,
    *,
    present: PresentSQL = _present_clause,
    missing: MissingSQL = _missing_clause,
) -> tuple[str, list[Any]]:
    """Every filter of ``where``, joined by AND (empty SQL for no filter)."""
    parts: list[str] = []
    params: list[Any] = []
    for path, wanted in (where or {}).items():
        sql, more = field_clause(column, path, wanted, present=present, missing=missing)
        parts.append(sql)
        params += more
    return " AND ".join(parts), params


def same_json(a: Scalar, b: Scalar) -> bool:
    """Equal as JSON values: booleans are not numbers, numbers not strings."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    return type(a) is type(b) and a == b


def matches(data: Mapping[str, Any], where: Where | None) -> bool:
    """What `where_clause` selects, in Python: the reference the tests hold SQL to."""
    for path, wanted in (where or {}).items():
        spec = wanted if isinstance(wanted, Equals) else Equals(wanted)
        found: Any = data
        for segment in json_path(path)[2:].split("."):
            found = found.get(segment) if isinstance(found, Mapping) else None
        if found is None:
            found = spec.missing
        if isinstance(found, list | dict):
            return False
        if spec.any_case and isinstance(found, str) and isinstance(spec.value, str):
            if _ascii_lower(found) != _ascii_lower(spec.value):
                return False
        elif not same_json(found, spec.value):
            return False
    return True


def _ascii_lower(text: str) -> str:
    return "".join(c.lower() if "A" <= c <= "Z" else c for c in text)


@dataclass(frozen=True)
class ActiveState:
    """True for a stored configuration in which ``state_id`` is active: one of
    its atomic states is ``state_id`` or lies under it. The SQL twin of
    `engine.charts.configuration.is_active` (the property tests hold them equal).

    Written with ``instr`` on comma- and dot-delimited text, never ``LIKE``: a
    state id's ``_`` would be a wildcard there (``sync_x`` is not ``sync``'s
    child, nor is ``syncing``). A flat chart's state is one name, so this is
    plain equality for it, as before."""

    state_id: str

    def __post_init__(self) -> None:
        # A comma would span two atomic states; an empty id would match an
        # empty configuration in SQL but nothing in `is_active`.
        if not self.state_id or "," in self.state_id:
            raise ValueError(
                f"a state id is dotted names (like 'sync.failed'), not {self.state_id!r}"
            )

    def clause(self, column: str = "state") -> tuple[str, list[Any]]:
        """SQL over ``column`` (a configuration) and its parameters."""
        return (
            f"(instr(',' || {column} || ',', ',' || ? || ',') > 0"
            f" OR instr(',' || {column}, ',' || ? || '.') > 0)",
            [self.state_id, self.state_id],
        )


def active_in_any(column: str, state_ids: Sequence[str]) -> tuple[str, list[Any]]:
    """SQL true when any of ``state_ids`` is active in ``column`` (empty SQL for none)."""
    parts: list[str] = []
    params: list[Any] = []
    for state_id in state_ids:
        sql, more = ActiveState(state_id).clause(column)
        parts.append(sql)
        params += more
    return ("(" + " OR ".join(parts) + ")" if parts else ""), params


def placeholders(values: Sequence[Any]) -> str:
    return ",".join("?" * len(values))
