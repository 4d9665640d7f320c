"""Chart packages and the set of charts an engine runs.

A chart package is what a plugin ships: chart files plus the `Rules` (guards,
actions, event types) they name. Packages are found through the
``channelsync.charts`` entry point group, so a third party adds charts without
touching engine/.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from engine.charts.compiled import CompiledChart
from engine.charts.loader import ChartLoadError, ChartProblem, load_chart
from engine.events import EventTypes, TimerPayload
from engine.rules import Rules
from engine.store.migrate import Migration

ENTRY_POINT_GROUP = "channelsync.charts"


@dataclass(frozen=True)
class ChartPackage:
    """Chart files and the rules they use, as a plugin provides them."""

    name: str
    chart_files: Sequence[Path]
    rules: Rules
    settings: dict[str, Any] = field(default_factory=dict)
    # Tables the package's own code keeps beside the engine's (its read models,
    # say): applied once, in order, when an engine opens a database with it.
    migrations: Sequence[Migration] = ()

    @classmethod
    def from_directory(
        cls, name: str, directory: Path, rules: Rules, **settings: Any
    ) -> ChartPackage:
        files = sorted(Path(directory).glob("*.yaml"))
        return cls(name, files, rules, dict(settings))


def discover_packages() -> dict[str, ChartPackage]:
    """Every chart package installed under the ``channelsync.charts`` entry points."""
    packages: dict[str, ChartPackage] = {}
    for point in entry_points(group=ENTRY_POINT_GROUP):
        factory = point.load()
        package = factory() if callable(factory) else factory
        packages[point.name] = package
    return packages


class ChartSet:
    """The compiled charts of an engine, by entity kind and by name."""

    def __init__(
        self,
        charts: Iterable[CompiledChart],
        rules: Rules,
        settings: dict[str, Any],
        migrations: Sequence[Migration] = (),
    ) -> None:
        self.rules = rules
        self.settings = settings
        self.migrations = list(migrations)
        self.by_kind: dict[str, CompiledChart] = {}
        self.by_name: dict[str, CompiledChart] = {}
        for chart in charts:
            self.by_kind[chart.entity_kind] = chart
            self.by_name[chart.name] = chart

    @property
    def event_types(self) -> EventTypes:
        return self.rules.event_types

    @classmethod
    def load(
        cls,
        packages: Iterable[ChartPackage],
        settings: dict[str, Any] | None = None,
        chart_files: Sequence[Path] | None = None,
    ) -> ChartSet:
        """Load and check every chart of ``packages``; ``chart_files`` replaces
        the packages' own files (to run other versions of the charts)."""
        packages = list(packages)
        rules = Rules()
        merged_settings: dict[str, Any] = {}
        for package in packages:
            rules.update(package.rules)
            merged_settings.update(package.settings)
        merged_settings.update(settings or {})
        files = (
            list(chart_files)
            if chart_files is not None
            else [f for package in packages for f in package.chart_files]
        )
        register_timer_events(files, rules)
        charts: list[CompiledChart] = []
        problems: list[ChartProblem] = []
        kinds: dict[str, str] = {}
        for path in files:
            try:
                loaded = load_chart(path, rules)
            except ChartLoadError as err:
                problems.extend(err.problems)
                continue
            kind = loaded.spec.entity_kind
            if kind in kinds:
                problems.append(
                    ChartProblem(
                        str(path),
                        None,
                        "entity_kind",
                        f"entity kind {kind!r} is already served by {kinds[kind]}",
                    )
                )
                continue
            kinds[kind] = str(path)
            charts.append(CompiledChart(loaded, rules))
        if problems:
            raise ChartLoadError(problems)
        migrations = [step for package in packages for step in package.migrations]
        return cls(charts, rules, merged_settings, migrations)


def register_timer_events(files: Sequence[Path], rules: Rules) -> None:
    """Timer events carry a `TimerPayload` unless a package declared them."""
    from engine.charts.loader import read_chart_file

    for path in files:
        try:
            spec = read_chart_file(path).spec
        except ChartLoadError:
            continue  # reported properly by load_chart
        for timer in spec.timers:
            if timer.event not in rules.event_types:
                rules.event_types.register(timer.event, TimerPayload)
