"""The read models' filters in PostgreSQL's SQL: the twins of
`engine.store.read_models_sql`'s SQLite clauses, with the same meaning.

A field filter compares a JSON value the way `read_models_sql.matches`
does: a string only a string (any case folds ASCII letters only, as
SQLite's ``lower`` does), a number only a number (compared as exact decimals, so ``1``
equals ``1.0``), a boolean only that boolean, and ``None`` a field that is
null or missing. The JSON text is parsed as ``json`` (not ``jsonb``, which
refuses a ``\\u0000`` anywhere in a value); a path through something that is
not an object finds nothing.

Active states are matched with ``strpos`` on comma- and dot-delimited text,
never ``LIKE`` (a state id's ``_`` would be a wildcard).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from engine.store.read_models_sql import ActiveState, Equals, Where
from engine.store.read_models_sql import where_clause as sqlite_where_clause
from engine.store.rows import dumps

_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_LOWER = _UPPER.lower()


def _ascii_lower(sql: str) -> str:
    return f"translate({sql}, '{_UPPER}', '{_LOWER}')"


# PostgreSQL turns every string it walks past in a JSON path into text, and
# text cannot hold NUL: one ``\u0000`` anywhere in a row's JSON would make a
# filter over the whole table fail. So filters read the JSON with NUL escapes
# spelled ``\u0030`` instead, after spelling escaped backslashes ``\u005c``
# (that pairs backslashes from the left, as JSON does, so only real NUL
# escapes are rewritten). Strings compare as JSON text rewritten alike on
# both sides; the engine's JSON never spells ``\u0030`` or ``\u005c`` itself
# (it writes those characters plainly), so no two strings become equal.
_BACKSLASH = ("\\\\", "\\u005c")
_NUL = ("\\u0000", "\\u0030")


def json_of(column: str) -> str:
    """``column``'s JSON text as ``json`` a path can walk (see above)."""
    # chr(92) is a backslash, whatever standard_conforming_strings says.
    pairs = "repeat(chr(92), 2), chr(92) || 'u005c'"
    return f"replace(replace({column}, {pairs}), chr(92) || 'u0000', chr(92) || 'u0030')::json"


def string_json(value: str) -> str:
    """A string as JSON text, rewritten as `json_of` rewrites stored JSON."""
    return dumps(value).replace(*_BACKSLASH).replace(*_NUL)


def _node(column: str) -> str:
    return f"({json_of(column)} #> %s::text[])"


def _segments(target: str) -> list[str]:
    """``$.a.b`` (a path `json_path` checked) as PostgreSQL's path array."""
    return target[2:].split(".")


def _present(column: str, target: str, spec: Equals) -> tuple[str, list[Any]]:
    """SQL true when the field at ``target`` holds ``spec.value`` as JSON."""
    node, path = _node(column), _segments(target)
    value = spec.value
    if isinstance(value, bool):
        return (
            f"(json_typeof{node} = 'boolean' AND {node}::text = %s)",
            [path, path, "true" if value else "false"],
        )
    if isinstance(value, str):
        text = f"{node}::text"
        compare = (
            f"{_ascii_lower(text)} = {_ascii_lower('%s')}" if spec.any_case else f"{text} = %s"
        )
        return f"(json_typeof{node} = 'string' AND {compare})", [path, path, string_json(value)]
    # Numbers as exact decimals: Python's shortest text of a float is the text
    # the engine wrote it as.
    return (
        f"(json_typeof{node} = 'number' AND {node}::text::numeric = %s::numeric)",
        [path, path, repr(value)],
    )


def _missing(column: str, target: str) -> tuple[str, list[Any]]:
    return f"coalesce(json_typeof{_node(column)}, 'null') = 'null'", [_segments(target)]


def where_clause(column: str, where: Where | None) -> tuple[str, list[Any]]:
    """Every filter of ``where`` over ``column`` (JSON text), joined by AND
    (`engine.store.read_models_sql.where_clause` with PostgreSQL's clauses)."""
    return sqlite_where_clause(column, where, present=_present, missing=_missing)


def active_clause(column: str, state_ids: Sequence[str]) -> tuple[str, list[Any]]:
    """SQL true when any of ``state_ids`` is active in the configuration in
    ``column`` (an atomic state of it is the id or lies under it)."""
    parts: list[str] = []
    params: list[Any] = []
    for state_id in state_ids:
        ActiveState(state_id)  # the same refusal of ids that cannot be states
        parts.append(
            f"(strpos(',' || {column} || ',', ',' || %s || ',') > 0"
            f" OR strpos(',' || {column}, ',' || %s || '.') > 0)"
        )
        params += [state_id, state_id]
    return ("(" + " OR ".join(parts) + ")" if parts else ""), params


__all__ = ["active_clause", "json_of", "string_json", "where_clause"]
