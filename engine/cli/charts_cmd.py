"""`channelsync chart ...`: validate, draw, list the charts and print their schema.

The chart loader and schema are imported by the commands that use them: this
module is imported to build the command line (engine/cli/main.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from engine.cli.common import err, fail, out, print_json

if TYPE_CHECKING:
    from engine.charts.schema import ChartSpec, StateSpec
    from engine.chartset import ChartPackage
    from engine.rules import Rules


def register(app: typer.Typer) -> None:
    chart_app = typer.Typer(help="Validate and draw statecharts.", no_args_is_help=True)
    chart_app.command("validate")(chart_validate)
    chart_app.command("show")(chart_show)
    chart_app.command("schema")(chart_schema)
    chart_app.command("list")(chart_list)
    app.add_typer(chart_app, name="chart")


def _all_rules(packages: dict[str, ChartPackage]) -> Rules:
    """The guards, actions and event types of every installed package together."""
    from engine.chartset import register_timer_events
    from engine.rules import Rules

    rules = Rules()
    for package in packages.values():
        rules.update(package.rules)
        register_timer_events(package.chart_files, rules)
    return rules


def _installed_charts() -> list[tuple[str, Path, ChartSpec]]:
    """(package name, file, chart) for every installed chart."""
    from engine.charts.loader import ChartLoadError, load_chart
    from engine.chartset import discover_packages

    packages = discover_packages()
    rules = _all_rules(packages)
    try:
        return [
            (name, Path(file), load_chart(file, rules).spec)
            for name, package in sorted(packages.items())
            for file in package.chart_files
        ]
    except ChartLoadError as error:
        raise fail(f"an installed chart does not load:\n{error}") from None


def chart_validate(
    paths: Annotated[list[Path], typer.Argument(help="Chart files or folders of them.")],
) -> None:
    """Check chart files (ENG-1); prints every problem with file, line and place."""
    from engine.charts.loader import ChartLoadError, load_chart
    from engine.chartset import discover_packages, register_timer_events

    rules = _all_rules(discover_packages())
    files: list[Path] = []
    for path in paths:
        files.extend(sorted(path.glob("*.yaml")) if path.is_dir() else [path])
    if not files:
        raise fail("no chart files given")
    register_timer_events(files, rules)
    failed = False
    for file in files:
        try:
            loaded = load_chart(file, rules)
        except ChartLoadError as error:
            failed = True
            for problem in error.problems:
                err.print(str(problem), highlight=False, markup=False)
            continue
        spec = loaded.spec
        out.print(
            f"ok  {file}  ({spec.name}: {_count_states(spec.states)} states, "
            f"{len(spec.transitions)} transitions, {len(spec.timers)} timers)",
            highlight=False,
        )
    if failed:
        raise typer.Exit(1)


def _count_states(states: dict[str, StateSpec]) -> int:
    """Every state, nested ones included (a compound state counts as one too)."""
    return sum(1 + _count_states(state.states) for state in states.values())


def chart_show(
    name: Annotated[str, typer.Argument(help="The chart's name, e.g. order.")],
    format: Annotated[str, typer.Option("--format", help="mermaid, json or yaml.")] = "mermaid",
    internal: Annotated[
        bool, typer.Option("--internal", help="Draw internal transitions as self-loops.")
    ] = False,
) -> None:
    """Print an installed chart as a Mermaid stateDiagram-v2 (or JSON/YAML)."""
    if format not in ("mermaid", "json", "yaml"):
        raise fail(f"unknown format {format!r}: use mermaid, json or yaml")
    charts = _installed_charts()
    for _package, file, spec in charts:
        if spec.name != name:
            continue
        if format == "mermaid":
            from engine.charts.mermaid import to_mermaid

            typer.echo(to_mermaid(spec, internal=internal), nl=False)
        elif format == "json":
            print_json(spec.model_dump(mode="json"))
        else:
            typer.echo(file.read_text(encoding="utf-8"), nl=False)
        return
    known = ", ".join(sorted(spec.name for _p, _f, spec in charts))
    raise fail(f"no chart named {name!r}; installed: {known}")


def chart_schema() -> None:
    """Print the JSON Schema of chart files (for editors)."""
    from engine.charts.schema import chart_json_schema

    print_json(chart_json_schema())


def chart_list() -> None:
    """List installed chart packages and their charts."""
    for package, file, spec in _installed_charts():
        out.print(
            f"{package}: {spec.name} (entity kind {spec.entity_kind}) {file}", highlight=False
        )
