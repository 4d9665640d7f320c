"""Generated hierarchical charts and event sequences for the differential property.

Small charts (about ten states, one to three levels): compound and parallel
states, a parallel top sometimes, entry and exit actions on every state,
transitions between levels, parent transitions, targetless ones, guards on
data flags and on ``in_state``, actions that write data. With
``full=True`` also final states, done events and history (the interpreter is
then the only oracle); with ``full=False`` only what `transitions`'
HierarchicalMachine expresses the same way (tests/property/hierarchy_hsm.py).

The rules (`RULES`) are the vocabulary the interpreter knows: guard
``flag=K`` (data[K] is odd), action ``note=X`` (a ``note`` command whose
payload is X: the step's trace, in the order actions ran) and ``bump=K``
(data[K] += 1).
"""

from __future__ import annotations

from itertools import count
from typing import Any

from hypothesis import strategies as st

from engine.charts.compiled import CompiledChart
from engine.charts.loader import LoadedChart
from engine.charts.schema import ChartSpec
from engine.events import Event
from engine.rules import Rules, StepContext
from tests.property.hierarchy_tree import TOP, Tree

EVENTS = ("e1", "e2", "e3")
# Events of the planted patterns (`_plant`): enter, leave, come back, go deep, finish.
PLANTED = ("h0", "h1", "h2", "h3", "d1")
UNIQUE_EVENTS = tuple(f"x{n}" for n in range(12))
FLAGS = ("a", "b")
MAX_STATES = 10

RULES = Rules()
for _event in EVENTS + PLANTED + UNIQUE_EVENTS:
    RULES.event(_event)


@RULES.guard("flag", takes_argument=True)
def _flag(ctx: StepContext, key: str) -> bool:
    return bool(ctx.data.get(key, 0) % 2 == 1)


@RULES.action("note", takes_argument=True)
def _note(ctx: StepContext, what: str) -> None:
    ctx.emit("note", {"what": what}, idempotency_key=f"note#{len(ctx.commands)}")


@RULES.action("bump", takes_argument=True)
def _bump(ctx: StepContext, key: str) -> None:
    ctx.data[key] = ctx.data.get(key, 0) + 1


def trace_of(commands: list[Any]) -> list[str]:
    return [c.payload["what"] for c in commands if c.type == "note"]


def timers_of(requests: list[Any]) -> list[tuple[str, float | None, str]]:
    """Timer requests, in a fixed order: (name, due, event), '' for a cancel's event."""
    found = [(r.name, r.due_at, r.event_type if r.due_at is not None else "") for r in requests]
    return sorted(found, key=str)


def compile_chart(doc: dict[str, Any], rules: Rules = RULES, **options: Any) -> CompiledChart:
    """The candidate: core's compiled chart, built without the loader's checks."""
    return CompiledChart(
        LoadedChart(ChartSpec.model_validate(doc), "generated.yaml", {}), rules, **options
    )


def make_event(kind: str, index: int) -> Event:
    return RULES.event_types.make(
        kind, "gen:1", {}, event_id=f"e{index}", source="test", received_at=1_700_000_000.0 + index
    )


# -- the states -----------------------------------------------------------


def _state(
    draw: st.DrawFn,
    node_id: str,
    depth: int,
    names: count[int],
    budget: list[int],
    full: bool,
    kind: str,
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "label": node_id,
        "entry": [f"note=in:{node_id}"],
        "exit": [f"note=out:{node_id}"],
    }
    if kind == "atomic":
        return doc
    if kind == "parallel":
        doc["parallel"] = True
        regions = draw(st.integers(2, 3 if budget[0] < MAX_STATES - 6 else 2))
        doc["states"] = {}
        for _ in range(regions):
            name = f"r{next(names)}"
            region_id = f"{node_id}.{name}"
            region = _state(draw, region_id, depth + 1, names, budget, full, "compound")
            if full and draw(st.integers(0, 3)) > 0:
                # A region that can finish, so that the parallel state's done event can happen.
                final = f"f{next(names)}"
                region["states"][final] = {
                    "label": final,
                    "final": True,
                    "entry": [f"note=in:{region_id}.{final}"],
                    "exit": [f"note=out:{region_id}.{final}"],
                }
            doc["states"][name] = region
        return doc
    doc["states"] = _children(draw, node_id, depth, names, budget, full)
    non_final = [n for n, child in doc["states"].items() if not child.get("final")]
    doc["initial"] = draw(st.sampled_from(non_final))
    return doc


def _children(
    draw: st.DrawFn, parent_id: str, depth: int, names: count[int], budget: list[int], full: bool
) -> dict[str, Any]:
    children: dict[str, Any] = {}
    wanted = draw(st.integers(1, 3))
    for position in range(wanted):
        budget[0] += 1
        name = f"s{next(names)}"
        child_id = f"{parent_id}.{name}" if parent_id else name
        kinds = ["atomic"]
        if depth < 3 and budget[0] < MAX_STATES - 2:
            kinds += ["compound", "parallel"]
        kind = draw(st.sampled_from(kinds))
        child = _state(draw, child_id, depth + 1, names, budget, full, kind)
        if full and kind == "atomic" and position > 0 and draw(st.booleans()):
            child["final"] = True
        children[name] = child
    return children


# -- the transitions ------------------------------------------------------


def _transition(draw: st.DrawFn, index: int, tree: Tree, full: bool) -> dict[str, Any]:
    states = [s for s in tree.nodes if s != TOP]
    composites = [s for s in states if tree.nodes[s].kind != "atomic"]
    sources = [s for s in states if not tree.nodes[s].final]
    done = full and composites and draw(st.integers(0, 4)) == 0
    if done:
        source = draw(st.sampled_from(composites))
        event = f"done.state.{source}"
    else:
        source = draw(st.sampled_from(sources))
        event = draw(st.sampled_from(EVENTS[:2] * 2 + EVENTS[2:]))
    doc: dict[str, Any] = {"event": event, "source": source, "actions": [f"note=t{index}"]}
    if draw(st.integers(0, 4)) > 0:
        finals = [s for s in states if tree.nodes[s].final]
        target = draw(st.sampled_from(states + finals * 2))
        doc["target"] = target
        if full and tree.nodes[target].kind == "compound" and draw(st.booleans()):
            doc["history"] = draw(st.sampled_from(["shallow", "deep"]))
    if not done:
        guard = draw(st.sampled_from(["", "", "", "flag=a", "!flag=a", "flag=b", "in_state"]))
        if guard == "in_state":
            guard = f"in_state={draw(st.sampled_from(states))}"
        doc["guards"] = [guard] if guard else []
        if draw(st.booleans()):
            doc["actions"].append(f"bump={draw(st.sampled_from(FLAGS))}")
    return doc


def _partner(
    draw: st.DrawFn, index: int, tree: Tree, first: dict[str, Any]
) -> dict[str, Any] | None:
    """Sometimes, a transition on the same event in another region of a
    parallel state holding the first one's source: both may fire at once."""
    parallels = [p for p in tree.ancestors(first["source"]) if tree.nodes[p].kind == "parallel"]
    if not parallels or first["event"].startswith("done.") or draw(st.integers(0, 2)) > 0:
        return None
    parallel = draw(st.sampled_from(parallels))
    regions = [
        r for r in tree.nodes[parallel].children if not tree.is_descendant(first["source"], r)
    ]
    region = draw(st.sampled_from(regions))
    inside = [s for s in tree.nodes if tree.is_descendant(s, region)]
    doc: dict[str, Any] = {
        "event": first["event"],
        "source": draw(st.sampled_from([s for s in inside if not tree.nodes[s].final])),
        "actions": [f"note=t{index}"],
    }
    target = draw(st.sampled_from([None, *inside]))
    if target is not None:
        doc["target"] = target
    if draw(st.booleans()):
        doc["actions"].append(f"bump={draw(st.sampled_from(FLAGS))}")
    return doc


def _plant(draw: st.DrawFn, index: int, tree: Tree) -> list[dict[str, Any]]:
    """Transitions that make the rarer features happen often enough to be
    checked: a compound state left deep inside and entered again through
    history; every region of a parallel state brought to a final state."""
    planted: list[dict[str, Any]] = []

    def add(event: str, source: str, target: str, **extra: Any) -> None:
        actions = [f"note=t{index + len(planted)}"]
        planted.append({"event": event, "source": source, "target": target, "actions": actions})
        planted[-1].update(extra)

    deep = [
        s
        for s, node in tree.nodes.items()
        if s != TOP
        and node.kind == "compound"
        and any(tree.nodes[c].kind != "atomic" for c in node.children)
    ]
    if deep and draw(st.integers(0, 3)) > 0:
        home = draw(st.sampled_from(deep))
        # Somewhere two levels down (where deep and shallow history differ).
        inside = [
            a
            for a in tree.atomic_under(home)
            if not tree.nodes[a].final and tree.nodes[a].depth > tree.nodes[home].depth + 1
        ]
        outside = [
            s for s in tree.nodes if s != TOP and s != home and not tree.is_descendant(s, home)
        ]
        outside = [s for s in outside if not tree.is_descendant(home, s)]
        if outside:
            away = draw(st.sampled_from(outside))
            add("h0", "*", home)
            add("h3", home, draw(st.sampled_from(inside)))
            add("h1", home, away)
            add("h2", away, home, history=draw(st.sampled_from(["shallow", "deep"])))
    parallels = [s for s, node in tree.nodes.items() if s != TOP and node.kind == "parallel"]
    if parallels and draw(st.booleans()):
        parallel = draw(st.sampled_from(parallels))
        for region in tree.nodes[parallel].children:
            finals = [c for c in tree.nodes[region].children if tree.nodes[c].final]
            if finals:
                add("d1", region, finals[0])
        others = [s for s in tree.nodes if s != TOP and not tree.is_descendant(s, parallel)]
        add(f"done.state.{parallel}", parallel, draw(st.sampled_from(others)))
    return planted


@st.composite
def charts(draw: st.DrawFn, full: bool = True) -> dict[str, Any]:
    """A chart document (what a chart file holds, as a dict)."""
    names = count()
    budget = [0]
    parallel = draw(st.integers(0, 3)) == 0
    doc: dict[str, Any] = {"name": "generated", "entity_kind": "gen", "version": 1}
    if parallel:
        doc["parallel"] = True
        doc["states"] = {}
        for _ in range(draw(st.integers(2, 3))):
            name = f"r{next(names)}"
            doc["states"][name] = _state(draw, name, 1, names, budget, full, "compound")
    else:
        doc["states"] = _children(draw, TOP, 0, names, budget, full)
        doc["initial"] = draw(
            st.sampled_from([n for n, s in doc["states"].items() if not s.get("final")])
        )
    tree = Tree(ChartSpec.model_validate({**doc, "events": [], "transitions": []}))
    doc["transitions"] = []
    for _ in range(draw(st.integers(2, 10))):
        doc["transitions"].append(_transition(draw, len(doc["transitions"]), tree, full))
        partner = _partner(draw, len(doc["transitions"]), tree, doc["transitions"][-1])
        if partner is not None:
            doc["transitions"].append(partner)
    if full:
        doc["transitions"] += _plant(draw, len(doc["transitions"]), tree)
        states = [s for s in tree.nodes if s != TOP]
        doc["timers"] = [
            {
                "name": f"k{n}",
                "state": draw(
                    st.lists(st.sampled_from(states), min_size=1, max_size=2, unique=True)
                ),
                "event": draw(st.sampled_from(EVENTS)),
                "after": draw(st.integers(1, 50)),
            }
            for n in range(draw(st.integers(0, 2)))
        ]
    else:
        from tests.property.hierarchy_hsm import make_expressible

        doc["transitions"] = make_expressible(tree, doc["transitions"])
    doc["events"] = sorted(
        {t["event"] for t in doc["transitions"] if not t["event"].startswith("done.")} | set(EVENTS)
    )
    return doc


@st.composite
def charts_and_events(draw: st.DrawFn, full: bool = True) -> tuple[dict[str, Any], list[str]]:
    doc = draw(charts(full))
    used = sorted({t["event"] for t in doc["transitions"] if not t["event"].startswith("done.")})
    events = draw(st.lists(st.sampled_from(used or doc["events"]), min_size=1, max_size=10))
    if "h2" in used and draw(st.booleans()):
        # The history pattern in order (enter, go deep, leave, come back),
        # other events between.
        pattern = ("h0", "h3", "h1", "h2")
        places = sorted(draw(st.lists(st.integers(0, len(events)), min_size=4, max_size=4)))
        for offset, (event, place) in enumerate(zip(pattern, places, strict=True)):
            events.insert(place + offset, event)
    return doc, events
