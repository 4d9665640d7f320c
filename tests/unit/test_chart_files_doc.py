"""The chart examples of docs/chart-files.md load as they are written: the
flat one with the parcel sample's rules, the nested one (ENG-8) with the
shipment sample's, so the page cannot drift from what the loader accepts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from engine import Rules
from engine.charts.loader import load_chart
from engine.chartset import register_timer_events
from engine.sample import rules as parcel_rules
from engine.sample.shipment import rules as shipment_rules

PAGE = Path(__file__).resolve().parents[2] / "docs" / "chart-files.md"
YAML_BLOCK = re.compile(r"^```yaml\n(.*?)^```", re.S | re.M)


def chart_examples() -> dict[str, str]:
    """The page's YAML blocks that are whole charts, by chart name."""
    blocks = YAML_BLOCK.findall(PAGE.read_text())
    return {
        re.search(r"^name: (\w+)", block, re.M).group(1): block
        for block in blocks
        if re.search(r"^states:", block, re.M)
    }


@pytest.mark.parametrize(
    ("name", "rules"), [("parcel", parcel_rules), ("shipment", shipment_rules)]
)
def test_the_pages_chart_example_loads(tmp_path, name, rules):
    path = tmp_path / f"{name}.yaml"
    path.write_text(chart_examples()[name])
    merged = Rules()
    merged.update(rules)
    register_timer_events([path], merged)
    loaded = load_chart(path, merged)
    assert loaded.spec.name == name


def test_the_nested_example_is_parallel_with_three_regions():
    spec_text = chart_examples()["shipment"]
    assert "parallel: true" in spec_text
    assert all(f"\n  {region}:\n" in spec_text for region in ("lifecycle", "sync", "push"))
