"""What every chart check shares: a problem as a chart author reads it, the
error that lists them all (ENG-1), guard references and a loaded chart."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from engine.charts.schema import ChartSpec

ANY_STATE = "*"
# `done.state.<id>`: raised inside a step when compound or parallel state <id> completes.
DONE_PREFIX = "done.state."
# The built-in guard `in_state=<state id>` (SCXML's In()): no package registers it.
IN_STATE_GUARD = "in_state"


@dataclass(frozen=True, slots=True)
class ChartProblem:
    file: str
    line: int | None
    place: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.place}: {self.message}"


class ChartLoadError(Exception):
    """A chart file that cannot be used; ``problems`` lists everything wrong with it."""

    def __init__(self, problems: list[ChartProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass(frozen=True, slots=True)
class GuardRef:
    name: str
    argument: str | None = None
    negated: bool = False

    @classmethod
    def parse(cls, text: str) -> GuardRef:
        text = text.strip()
        negated = text.startswith("!")
        if negated:
            text = text[1:].strip()
        name, _, argument = text.partition("=")
        return cls(name.strip(), argument.strip() if "=" in text else None, negated)

    def excludes(self, other: GuardRef) -> bool:
        """True when this guard and ``other`` can never both hold."""
        if self.name != other.name:
            return False
        if self.argument is None and other.argument is None:
            return self.negated != other.negated
        mine, theirs = self.alternatives(), other.alternatives()
        if self.negated and other.negated:
            return False
        if self.negated or other.negated:
            return mine == theirs
        return not (mine & theirs)

    def alternatives(self) -> frozenset[str]:
        """``g=a|b`` holds for a or b: two such guards exclude each other when
        their alternatives do not overlap."""
        return frozenset(part.strip() for part in (self.argument or "").split("|"))

    def __str__(self) -> str:
        text = ("!" if self.negated else "") + self.name
        return text if self.argument is None else f"{text}={self.argument}"


def guards_exclude(first: list[str], second: list[str]) -> bool:
    """True when two transitions' guard lists can never both hold."""
    mine = [GuardRef.parse(g) for g in first]
    theirs = [GuardRef.parse(g) for g in second]
    return any(a.excludes(b) for a in mine for b in theirs)


@dataclass(frozen=True, slots=True)
class LoadedChart:
    spec: ChartSpec
    file: str
    lines: dict[tuple[Any, ...], int]


# Records one problem: (path in the YAML document, place shown, message).
Report = Callable[[tuple[Any, ...], str, str], None]
