"""Chart packages and the set of charts an engine runs.

A chart package is what a plugin ships: chart files plus the `Rules` (guards,
actions, event types) they name. Packages are found through the
``channelsync.charts`` entry point group, so a third party adds charts without
touching engine/.

A package may ship several versions of one chart (files with the same
``name`` and different ``version``, ENG-9): entities stay on the version they
started on until `channelsync migrate` moves them, so the versions some
entity or the log still needs are kept installed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from engine.charts.compiled import CompiledChart
from engine.charts.loader import ChartLoadError, ChartProblem, load_chart
from engine.charts.schema import ChartSpec
from engine.events import EventTypes, TimerPayload
from engine.rules import Rules
from engine.store.migrate import Migration
from engine.upgrades import UPGRADE_EVENT, UpgradePayload

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


class VersionNotInstalled(LookupError):
    """An entity or a logged event needs a version of a chart that is not installed."""

    def __init__(self, chart: str, version: int, installed: Sequence[int]) -> None:
        super().__init__(
            f"version {version} of chart {chart!r} is not installed (installed: "
            f"{', '.join(map(str, sorted(installed))) or 'none'}). Ship that version's chart"
            " file in the chart package again (same name, its version number) until every"
            " entity on it is migrated (`channelsync migrate`) and the log no longer needs it"
        )
        self.chart = chart
        self.version = version


class ChartSet:
    """The compiled charts of an engine: the newest version of each by entity
    kind and by name, every installed version by (name, version)."""

    def __init__(
        self,
        charts: Iterable[CompiledChart],
        rules: Rules,
        settings: dict[str, Any],
        migrations: Sequence[Migration] = (),
    ) -> None:
        self.rules = rules
        # The engine's own event that moves an entity to a newer version.
        if UPGRADE_EVENT not in rules.event_types:
            rules.event_types.register(UPGRADE_EVENT, UpgradePayload)
        self.settings = settings
        self.migrations = list(migrations)
        self.by_kind: dict[str, CompiledChart] = {}
        self.by_name: dict[str, CompiledChart] = {}
        self.versions: dict[tuple[str, int], CompiledChart] = {}
        for chart in sorted(charts, key=lambda c: c.spec.version):
            self.versions[(chart.name, chart.spec.version)] = chart
            # Sorted by version: the newest is the last one set.
            self.by_kind[chart.entity_kind] = chart
            self.by_name[chart.name] = chart

    def version(self, name: str, version: int) -> CompiledChart:
        """Version ``version`` of chart ``name``; `VersionNotInstalled` if it is not here."""
        chart = self.versions.get((name, version))
        if chart is None:
            installed = [v for (n, v) in self.versions if n == name]
            raise VersionNotInstalled(name, version, installed)
        return chart

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
        served = _Served()
        for path in files:
            try:
                loaded = load_chart(path, rules)
            except ChartLoadError as err:
                problems.extend(err.problems)
                continue
            found = served.problem(path, loaded.spec) or _upgrade_problems(path, loaded.spec, rules)
            if found:
                problems.extend(found)
                continue
            charts.append(CompiledChart(loaded, rules))
        if problems:
            raise ChartLoadError(problems)
        migrations = [step for package in packages for step in package.migrations]
        return cls(charts, rules, merged_settings, migrations)


class _Served:
    """Which file serves each entity kind and each (chart, version), so a
    second one is reported with the first one's file."""

    def __init__(self) -> None:
        self.kinds: dict[str, tuple[str, str]] = {}  # kind -> (chart name, file)
        self.versions: dict[tuple[str, int], str] = {}

    def problem(self, path: Path, spec: ChartSpec) -> list[ChartProblem]:
        kind, key = spec.entity_kind, (spec.name, spec.version)
        if key in self.versions:
            return [
                ChartProblem(
                    str(path),
                    None,
                    "version",
                    f"chart {spec.name!r} version {spec.version} is already loaded from"
                    f" {self.versions[key]}; each version of a chart comes from one file",
                )
            ]
        known = self.kinds.get(kind)
        if known is not None and known[0] != spec.name:
            message = f"entity kind {kind!r} is already served by {known[1]}"
            return [ChartProblem(str(path), None, "entity_kind", message)]
        other = next((f for (n, _v), f in self.versions.items() if n == spec.name), None)
        if known is None and other is not None:
            message = (
                f"chart {spec.name!r} serves entity kind {kind!r} here but another kind in"
                f" {other}: every version of a chart serves one kind"
            )
            return [ChartProblem(str(path), None, "entity_kind", message)]
        self.kinds[kind] = (spec.name, str(path))
        self.versions[key] = str(path)
        return []


def _upgrade_problems(path: Path, spec: ChartSpec, rules: Rules) -> list[ChartProblem]:
    """An upgrade must come from an older version and name a registered data
    migration: what the upgrade step relies on, checked here whatever the
    loader's validation already reported."""
    problems = []
    for index, upgrade in enumerate(spec.upgrades):
        place = f"upgrades[{index}]"
        if upgrade.from_version >= spec.version:
            problems.append(
                ChartProblem(
                    str(path),
                    None,
                    place,
                    f"version {spec.version} cannot upgrade from version {upgrade.from_version}:"
                    " an upgrade comes from an older version",
                )
            )
        if upgrade.data is not None and upgrade.data not in rules.upgrades:
            problems.append(
                ChartProblem(
                    str(path),
                    None,
                    place,
                    f"data migration {upgrade.data!r} is not registered (Rules.upgrade)",
                )
            )
    return problems


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
