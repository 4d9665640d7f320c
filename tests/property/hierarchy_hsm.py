"""`transitions`' HierarchicalMachine as an oracle for generated charts.

The HierarchicalMachine (HSM) is an independent implementation of nested and
parallel states. Where it and the documented semantics agree, it decides what
the candidate must do: which transitions fire (inner before outer, every
region seeing the event), which states are exited and entered, the
configuration reached. Where they differ by design, the generator keeps to
what both express the same way (`make_expressible`); the interpreter
(hierarchy_interpreter.py) is then the oracle. The differences:

- no history and no final states / done events in the HSM;
- a transition whose target is a descendant of its source: the HSM exits
  only the active child (a local transition), the semantics exit and
  re-enter the source (SCXML's external transition): left out;
- a target inside a parallel state's region, from outside that parallel
  state: the HSM enters only the targeted region, the semantics enter every
  region: left out; so is a transition between regions of a parallel top;
- a transition leaving a parallel state while another region handles the
  same event: the HSM tries deeper states first, the semantics atomic states
  in document order: such a transition gets an event of its own;
- a transition whose target is its source: the HSM exits and re-enters it,
  the semantics do not (a documented deliberate difference): given to the
  HSM as internal;
- order: the HSM runs each transition whole (actions, exits, entries) before
  the next region's, and exits siblings in document order. The adapter
  therefore records what the HSM did (transitions fired, states exited and
  entered) and lays it out in the documented order: exits innermost first
  (equal depth: reverse document order), then the transitions' actions in
  document order (their order in the chart), then entries outermost first. Guards read
  the data and configuration the step started from, as documented.
"""

from __future__ import annotations

import logging
from itertools import count
from typing import Any

from transitions.extensions.nesting import HierarchicalMachine, NestedState

from tests.property.hierarchy_charts import UNIQUE_EVENTS
from tests.property.hierarchy_tree import TOP, Tree

logging.getLogger("transitions").setLevel(logging.ERROR)
ROOT = "R"
BOOT = "boot"


class _DottedState(NestedState):
    separator = "."


class _Machine(HierarchicalMachine):
    state_cls = _DottedState

    def _check_event_result(self, res: Any, model: Any, trigger: str) -> Any:
        # An event no active state handles is simply not taken. (The base
        # method looks the active states up by name to decide whether to
        # raise, and cannot find those under a parallel state's region.)
        return False if res is None else res


# -- what the HSM expresses like the documented semantics -----------------


def _domain(tree: Tree, source: str, target: str) -> str:
    for ancestor in tree.ancestors(source):
        if ancestor == TOP or (
            tree.nodes[ancestor].kind == "compound" and tree.is_descendant(target, ancestor)
        ):
            return ancestor
    return TOP


def _below(tree: Tree, state: str, domain: str) -> list[str]:
    """``state`` and its ancestors strictly below ``domain``."""
    path = [state]
    for ancestor in tree.ancestors(state):
        if ancestor == domain:
            break
        path.append(ancestor)
    return path


def make_expressible(tree: Tree, transitions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drop or adjust the transitions the HSM would run differently (module doc)."""
    kept: list[dict[str, Any]] = []
    fresh = count()
    for doc in transitions:
        source, target = doc["source"], doc.get("target")
        if target is None or target == source:
            if _encloses_parallel(tree, source, None):
                doc = {**doc, "event": UNIQUE_EVENTS[next(fresh)]}
            kept.append(doc)
            continue
        domain = _domain(tree, source, target)
        if tree.is_descendant(target, source) or tree.nodes[domain].kind == "parallel":
            continue
        if any(tree.nodes[s].kind == "parallel" for s in _below(tree, target, domain)[1:]):
            continue
        if _encloses_parallel(tree, source, domain):
            doc = {**doc, "event": UNIQUE_EVENTS[next(fresh)]}
        kept.append(doc)
    return kept


def _encloses_parallel(tree: Tree, source: str, domain: str | None) -> bool:
    """True when the transition leaves a parallel state, or its source is one
    or contains one: the HSM would then let a region's transition on the same
    event take precedence over it (it tries deeper states first)."""
    path = _below(tree, source, domain) if domain is not None else [source]
    if any(tree.nodes[s].kind == "parallel" for s in path):
        return True
    return any(
        tree.nodes[s].kind == "parallel" and tree.is_descendant(s, source) for s in tree.nodes
    )


# -- the adapter ----------------------------------------------------------


class _Model:
    state: Any


class HsmOracle:
    """Steps a generated chart on a HierarchicalMachine; `step` answers as the
    interpreter does: (outcome, configuration, data, trace, fired)."""

    def __init__(self, doc: dict[str, Any], tree: Tree) -> None:
        self.doc = doc
        self.tree = tree
        self.log: list[tuple[str, Any]] = []
        self.guard_data: dict[str, Any] = {}
        self.guard_active: set[str] = set()
        self.model = _Model()
        root = self._state(ROOT, TOP)
        self.machine = _Machine(
            model=self.model,
            states=[{"name": BOOT}, root],
            initial=BOOT,
            auto_transitions=False,
            send_event=True,
            ignore_invalid_triggers=True,
        )
        self.machine.add_transition("start", BOOT, ROOT)
        for index, t in enumerate(doc["transitions"]):
            target = t.get("target")
            dest = None if target is None or target == t["source"] else f"{ROOT}.{target}"
            self.machine.add_transition(
                t["event"],
                f"{ROOT}.{t['source']}",
                dest,
                conditions=[self._guard(g) for g in t.get("guards", [])],
                before=[lambda _e, i=index: self.log.append(("fired", i))],
            )
        self.started = False  # a first event that fires keeps the initial entry
        self.initial_trace: list[str] = []

    def _state(self, name: str, node_id: str) -> dict[str, Any]:
        node = self.tree.nodes[node_id]
        doc: dict[str, Any] = {
            "name": name,
            "on_enter": [lambda _e, s=node_id: self.log.append(("in", s))],
            "on_exit": [lambda _e, s=node_id: self.log.append(("out", s))],
        }
        children = [self._state(c.rsplit(".", 1)[-1], c) for c in node.children]
        if node.kind == "parallel":
            doc["parallel"] = children
        elif node.kind == "compound":
            doc["children"] = children
            assert node.initial is not None
            doc["initial"] = node.initial.rsplit(".", 1)[-1]
        return doc

    def _guard(self, guard: str) -> Any:
        negated = guard.startswith("!")
        name, _, argument = guard.lstrip("!").partition("=")

        def check(_event_data: Any) -> bool:
            if name == "in_state":
                holds = argument in self.guard_active
            else:
                holds = self.guard_data.get(argument, 0) % 2 == 1
            return holds != negated

        return check

    def configuration(self) -> str:
        leaves: list[str] = []

        def flatten(value: Any) -> None:
            if isinstance(value, list):
                for item in value:
                    flatten(item)
            else:
                leaves.append(str(value).removeprefix(f"{ROOT}."))

        flatten(self.model.state)
        return ",".join(sorted(leaves, key=lambda s: self.tree.nodes[s].order))

    def step(
        self, event: str, data: dict[str, Any]
    ) -> tuple[str, str, dict[str, Any], list[str], list[int]]:
        if not self.initial_trace:
            self.model.trigger("start")
            self.initial_trace = self._entries([s for k, s in self.log if k == "in" and s != TOP])
        self.log.clear()
        trace = [] if self.started else list(self.initial_trace)
        before = self.configuration()
        self.guard_data = dict(data)
        self.guard_active = self.tree.active_from(before)
        self.model.trigger(event)
        # What the HSM returns is the last tried transition's verdict (a
        # region whose guard said no after another region fired answers
        # False): what it did is in the log.
        if not any(kind == "fired" for kind, _ in self.log):
            return "ignored", before, data, [], []
        self.started = True
        fired = sorted(i for kind, i in self.log if kind == "fired")
        exits = [s for kind, s in self.log if kind == "out"]
        entries = [s for kind, s in self.log if kind == "in"]
        trace += [f"out:{s}" for s in sorted(exits, key=self.tree.exit_key)]
        new_data = dict(data)
        written: list[set[str]] = []
        for index in fired:
            keys = set()
            for action in self.doc["transitions"][index]["actions"]:
                name, _, argument = action.partition("=")
                if name == "note":
                    trace.append(argument)
                else:
                    new_data[argument] = new_data.get(argument, 0) + 1
                    keys.add(argument)
            if any(keys & earlier for earlier in written):
                return "error", before, data, [], []
            written.append(keys)
        trace += self._entries(entries)
        return "transitioned", self.configuration(), new_data, trace, fired

    def _entries(self, entered: list[str]) -> list[str]:
        return [f"in:{s}" for s in sorted(entered, key=self.tree.entry_key)]
