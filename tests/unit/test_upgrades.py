"""Chart versions (ENG-9) without a database: several versions in one ChartSet,
and the ``chart.upgraded`` step (renames, data migration, refusals)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from engine.charts.loader import ChartLoadError
from engine.chartset import ChartPackage, ChartSet, VersionNotInstalled
from engine.events import Event
from engine.rules import Rules
from engine.step import EntityState, json_copy
from engine.upgrades import UPGRADE_EVENT, renamed, upgrade_chain, upgrade_step
from tests.fixtures.versioned_parcel import V1, V2, package
from tests.fixtures.versioned_parcel import rules as parcel_rules

CHARTS = ChartSet.load([package()])


def upgrade(entity: str, from_version: int, to_version: int) -> Event:
    return CHARTS.event_types.make(
        UPGRADE_EVENT,
        entity,
        {"from_version": from_version, "to_version": to_version},
        event_id=f"up:{entity}",
        source="migrate",
        received_at=1.0,
    )


def parcel(state: str, data: dict[str, Any], chart_version: int = 1) -> EntityState:
    return EntityState("parcel:1", "parcel", state, data, 3, chart_version)


def write_version(directory: Path, version: int, **changes: Any) -> Path:
    """The v1 parcel chart as version ``version``, with ``changes`` to its document."""
    document = yaml.safe_load(V1.read_text())
    document.update(version=version, **changes)
    path = directory / f"parcel_{version}_{len(list(directory.iterdir()))}.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def test_the_newest_version_serves_new_entities_and_every_version_stays_reachable() -> None:
    assert CHARTS.by_kind["parcel"].spec.version == 2
    assert CHARTS.by_name["parcel"] is CHARTS.by_kind["parcel"]
    assert CHARTS.version("parcel", 1).spec.states.keys() >= {"packed"}
    with pytest.raises(VersionNotInstalled, match=r"version 3 of chart 'parcel'.*installed: 1, 2"):
        CHARTS.version("parcel", 3)


def test_one_version_from_two_files_is_refused_naming_both(tmp_path: Path) -> None:
    twin = write_version(tmp_path, 1)
    with pytest.raises(ChartLoadError) as refused:
        ChartSet.load([package(V1, twin)])
    assert f"chart 'parcel' version 1 is already loaded from {V1}" in str(refused.value)
    assert str(twin) in str(refused.value)


def test_every_version_serves_one_kind_and_upgrades_name_registered_migrations(
    tmp_path: Path,
) -> None:
    other_kind = write_version(tmp_path, 2, entity_kind="box")
    with pytest.raises(ChartLoadError, match="every version of a chart serves one kind"):
        ChartSet.load([package(V1, other_kind)])
    unknown = write_version(tmp_path, 2, upgrades=[{"from_version": 1, "data": "nowhere"}])
    backwards = write_version(tmp_path, 3, upgrades=[{"from_version": 3}])
    with pytest.raises(ChartLoadError) as refused:
        ChartSet.load([package(V1, unknown, backwards)])
    # Validation (engine.charts.loader) or ChartSet.load reports them, file and place.
    problems = [str(problem) for problem in refused.value.problems]
    assert any(f"{unknown}" in p and "'nowhere'" in p and "Rules.upgrade" in p for p in problems)
    assert any(f"{backwards}" in p and "upgrades[0]" in p for p in problems)


def test_an_upgrade_renames_migrates_the_data_and_leaves_its_input_alone() -> None:
    before = parcel("packed", {"weight_kg": 1.5, "notes": ["a"]})
    kept = json_copy(before.data)
    result = upgrade_step(CHARTS, before, upgrade("parcel:1", 1, 2))
    assert result.outcome.value == "transitioned"
    assert (result.from_state, result.to_state) == ("packed", "boxed")
    assert result.reason == "chart parcel version 1 -> 2"
    after = result.entity
    assert (after.state, after.chart_version, after.version) == ("boxed", 2, 4)
    assert after.data == {"weight_g": 1500, "notes": ["a"]}
    assert result.data_json == '{"notes":["a"],"weight_g":1500}'
    assert before.data == kept and before.chart_version == 1, "the input is unchanged"


def test_an_upgrade_that_does_not_apply_is_ignored_and_one_that_fails_is_an_error() -> None:
    moved = upgrade_step(CHARTS, parcel("boxed", {}, 2), upgrade("parcel:1", 1, 2))
    assert moved.outcome.value == "ignored" and "is on version 2" in (moved.reason or "")
    new = EntityState("parcel:1", "parcel", "created", {}, 0, 2)
    assert upgrade_step(CHARTS, new, upgrade("parcel:1", 2, 3)).outcome.value == "ignored"
    beyond = upgrade_step(CHARTS, parcel("packed", {}), upgrade("parcel:1", 1, 3))
    assert beyond.outcome.value == "error"
    assert "no installed version of chart parcel up to 3" in (beyond.reason or "")
    unknown = upgrade_step(CHARTS, parcel("lost", {}), upgrade("parcel:1", 1, 2))
    assert unknown.outcome.value == "error"
    assert "'lost' is not an atomic state of chart parcel version 2" in (unknown.reason or "")
    broken = upgrade_step(
        CHARTS, parcel("packed", {"weight_kg": "heavy"}), upgrade("parcel:1", 1, 2)
    )
    assert broken.outcome.value == "error" and "upgrade weight_in_grams failed" in (
        broken.reason or ""
    )


def test_the_chain_takes_the_farthest_version_that_upgrades_from_each(tmp_path: Path) -> None:
    rules = Rules()
    rules.update(parcel_rules)
    three = write_version(tmp_path, 3, upgrades=[{"from_version": 1}, {"from_version": 2}])
    charts = ChartSet.load([ChartPackage("p", [V1, V2, three], rules)])
    assert [hop.version for hop in upgrade_chain(charts, "parcel", 1, 3)] == [3]
    assert [hop.version for hop in upgrade_chain(charts, "parcel", 1, 2)] == [2]
    assert [hop.version for hop in upgrade_chain(charts, "parcel", 2, 3)] == [3]


NAMES = st.sampled_from(["a", "b", "c", "sync", "failed"])
IDS = st.lists(NAMES, min_size=1, max_size=4).map(".".join)


@given(IDS, st.dictionaries(IDS, IDS, max_size=4))
def test_a_renamed_state_takes_its_descendants_along(
    state_id: str, renames: dict[str, str]
) -> None:
    """For any id and renames: an id listed is replaced; otherwise its nearest
    renamed ancestor's new id replaces that ancestor's part; otherwise it stays."""
    result = renamed(state_id, renames)
    parts = state_id.split(".")
    ancestors = [".".join(parts[:depth]) for depth in range(len(parts), 0, -1)]
    nearest = next((a for a in ancestors if a in renames), None)
    if nearest is None:
        assert result == state_id
    else:
        assert result == renames[nearest] + state_id[len(nearest) :]


def nested_charts() -> Any:
    """Charts as the upgrade step reads them (specs by version, the rules), for
    a flat version 1 that version 2 nests under two regions."""
    from types import SimpleNamespace

    from engine.charts.schema import ChartSpec

    def spec(version: int, states: dict[str, Any], **more: Any) -> Any:
        document = {"name": "nest", "entity_kind": "nest", "version": version, "events": []}
        document.update(states=states, transitions=[], **more)
        return SimpleNamespace(spec=ChartSpec.model_validate(document))

    leaf = {"label": "leaf"}
    region = {"label": "r", "initial": "x", "states": {"x": leaf, "y": leaf}}
    rules = Rules()
    rules.upgrade("add_sync")(lambda data, state: ({**data, "v": 2}, state + ",sync.y"))
    versions = {
        ("nest", 1): spec(1, {"a": leaf, "b": leaf, "deep": {**region, "label": "d"}}),
        ("nest", 2): spec(
            2,
            {"lifecycle": region, "sync": region},
            parallel=True,
            upgrades=[
                {
                    "from_version": 1,
                    "states": {"a": "lifecycle.x", "deep": "lifecycle"},
                    "data": "add_sync",
                }
            ],
        ),
    }
    return SimpleNamespace(versions=versions, rules=rules)


def test_an_upgrade_maps_history_and_orders_the_new_configuration() -> None:
    """Renames reach the history (its compound states and their atomic states),
    a renamed compound state takes its children along, the data migration may
    complete the configuration, and the result is in the new chart's order."""
    charts = nested_charts()
    event = CHARTS.event_types.make(
        UPGRADE_EVENT,
        "nest:1",
        {"from_version": 1, "to_version": 2},
        event_id="up",
        source="migrate",
    )
    before = EntityState("nest:1", "nest", "a", {}, 1, 1, {"deep": ["deep.y"], "gone": ["a"]})
    result = upgrade_step(charts, before, event)
    assert result.outcome.value == "transitioned", result.reason
    after = result.entity
    assert after.state == "lifecycle.x,sync.y"
    assert after.history == {"lifecycle": ["lifecycle.y"]}, "history of a vanished state goes"
    assert after.data == {"v": 2}
    compound = upgrade_step(charts, EntityState("nest:1", "nest", "b", {}, 1, 1), event)
    assert compound.outcome.value == "error"
    assert "'b' is not an atomic state of chart nest version 2" in (compound.reason or "")
