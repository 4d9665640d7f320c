"""docs/charts.md shows every installed chart as `channelsync chart show NAME
--format mermaid` prints it, so a chart change cannot leave its diagram behind.

Regenerate the page after changing a chart:

    .venv/bin/python tests/unit/test_charts_doc.py
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from engine.charts.loader import load_chart
from engine.charts.mermaid import to_mermaid
from engine.chartset import discover_packages, register_timer_events
from engine.rules import Rules

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "charts.md"
REGENERATE = ".venv/bin/python tests/unit/test_charts_doc.py"

INTRO = """\
# The charts

Every installed chart, drawn as `channelsync chart show NAME --format mermaid`
prints it (GitHub renders the diagrams). Internal transitions, which never
change the state, are listed in `%%` comments under each diagram; `channelsync
chart show NAME --internal` draws them as self-loops. A compound state is a box
holding its children (with its own start), a parallel state's regions are
split by dashed lines, and a state's id in a diagram is its dotted id with `__`
for each dot (`sync__failed` is `sync.failed`). What each chart follows,
and the rules behind it, is in [the README](../README.md#the-tiktok-shop-channel)
and [rules.md](rules.md).

This page is generated: `tests/unit/test_charts_doc.py` fails when a diagram
here differs from its chart, and `{regenerate}` rewrites it.
"""


def installed_charts() -> list[tuple[str, str, str]]:
    """(chart name and version, file relative to the repository, diagram) for
    every chart this project installs (older versions kept for entities not yet
    migrated included), in the order `channelsync chart list` prints them."""
    packages = discover_packages()
    rules = Rules()
    for package in packages.values():
        rules.update(package.rules)
        register_timer_events(package.chart_files, rules)
    charts = []
    for _name, package in sorted(packages.items()):
        for file in package.chart_files:
            where = Path(file).resolve()
            # The example plugin under tests/fixtures is installed only while its
            # own tests run; the page documents the charts this project ships.
            if not where.is_relative_to(ROOT) or "tests" in where.relative_to(ROOT).parts:
                continue
            spec = load_chart(file, rules).spec
            title = f"{spec.name} v{spec.version}"
            charts.append((title, str(where.relative_to(ROOT)), to_mermaid(spec)))
    return charts


def render() -> str:
    parts = [INTRO.format(regenerate=REGENERATE)]
    for name, file, diagram in installed_charts():
        parts.append(f"\n## {name} (`{file}`)\n\n```mermaid\n{diagram}```\n")
    return "".join(parts)


def diagrams_in_page(text: str) -> dict[str, str]:
    found = re.findall(r"^## (\S+ v\d+) \(`[^`]*`\)\n\n```mermaid\n(.*?)```$", text, re.S | re.M)
    return dict(found)


def test_every_installed_chart_has_its_current_diagram_in_docs_charts_md():
    shown = diagrams_in_page(PAGE.read_text(encoding="utf-8"))
    stale = [name for name, _file, diagram in installed_charts() if shown.get(name) != diagram]
    assert not stale, f"docs/charts.md is out of date for {stale}; regenerate: {REGENERATE}"


def test_the_page_shows_no_chart_that_is_not_installed():
    installed = {name for name, _file, _diagram in installed_charts()}
    extra = set(diagrams_in_page(PAGE.read_text(encoding="utf-8"))) - installed
    assert not extra, f"docs/charts.md shows charts no package installs: {extra}"


def test_a_changed_diagram_is_caught():
    name, _file, diagram = installed_charts()[0]
    page = render().replace(diagram, diagram.replace("-->", "--> ", 1))
    assert diagrams_in_page(page)[name] != diagram


def test_the_page_shows_what_channelsync_chart_show_prints():
    from typer.testing import CliRunner

    from engine.cli.main import build_cli

    shown = diagrams_in_page(PAGE.read_text(encoding="utf-8"))
    for name in ("shop_connection", "product_listing", "order"):
        printed = (
            CliRunner().invoke(build_cli(), ["chart", "show", name, "--format", "mermaid"]).stdout
        )
        # `chart show` draws the newest version installed: version 2 of each.
        assert shown[f"{name} v2"] == printed, f"{name}: regenerate with {REGENERATE}"


def test_the_channel_charts_are_on_the_page():
    shown = diagrams_in_page(PAGE.read_text(encoding="utf-8"))
    assert {"shop_connection v2", "product_listing v2", "order v2", "parcel v1"} <= set(shown)


if __name__ == "__main__":
    PAGE.write_text(render(), encoding="utf-8")
    sys.stdout.write(f"wrote {PAGE.relative_to(ROOT)}\n")
