"""Render a chart as a Mermaid ``stateDiagram-v2`` (README, docs, reviews).

A flat chart is drawn as it always was: one line per state, per transition and
per timer. A chart with compound or parallel states draws each as a composite
(``state "Label" as id { ... }``) holding its children and its own ``[*] -->``
initial child; a parallel state's regions are separated by ``--``, and a
parallel chart's top-level regions sit in one composite named after the chart.
Mermaid wants every state id unique in the whole diagram, so a state's id there
is its dotted id with ``__`` for each dot (``sync__failed``); the label keeps
what a person reads. A transition is written inside the innermost composite
that holds both its ends (a parent transition starts at the composite itself);
one that enters with history says so in its label; timers, entry and exit
actions are notes on their state.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.charts.loader import ANY_STATE, expand_sources
from engine.charts.schema import ChartSpec, StateSpec, TimerSpec, TransitionSpec, parse_duration

INDENT = "    "


def _duration_text(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def _label(text: str) -> str:
    # Mermaid ends a label at a newline and chokes on ';' and '#'.
    return text.replace("\n", " ").replace(";", ",").replace("#", "").replace('"', "'")


def _timer_text(timer: TimerSpec) -> str:
    when = (
        f"after {_duration_text(parse_duration(timer.after))}"
        if timer.after is not None
        else f"at {timer.at}"
    )
    return f"timer {timer.name}, {when}, fires {timer.event}"


def _transition_label(transition: TransitionSpec) -> str:
    label = transition.event
    if transition.guards:
        label += " [" + ", ".join(transition.guards) + "]"
    if transition.history == "shallow":
        label += " (history)"
    elif transition.history == "deep":
        label += " (deep history)"
    return _label(label)


def is_nested(spec: ChartSpec) -> bool:
    """Whether the chart has a compound or parallel state (or is parallel itself)."""
    return spec.parallel or any(state.states for state in spec.states.values())


def to_mermaid(spec: ChartSpec, *, internal: bool = False) -> str:
    """The chart as a diagram. Internal transitions (no target: bookkeeping that
    never changes the state) are drawn as self-loops only with ``internal``;
    otherwise they are listed in ``%%`` comments, so the lifecycle stays legible."""
    if is_nested(spec):
        return _NestedDiagram(spec, internal).render()
    return _flat_diagram(spec, internal)


def _flat_diagram(spec: ChartSpec, internal: bool) -> str:
    lines = ["stateDiagram-v2"]
    for name, state in spec.states.items():
        lines.append(f'    state "{_label(state.label)}" as {name}')
    lines.append(f"    [*] --> {spec.initial}")
    hidden: dict[str, list[str]] = {}
    for transition in spec.transitions:
        if transition.target is None and not internal:
            hidden.setdefault(transition.event, []).extend(expand_sources(spec, transition))
            continue
        for source in expand_sources(spec, transition):
            target = transition.target or source
            lines.append(f"    {source} --> {target} : {_transition_label(transition)}")
    for timer in spec.timers:
        for state_name in timer.state:
            lines.append(f"    note right of {state_name} : {_timer_text(timer)}")
    for name, state in spec.states.items():
        if state.final:
            lines.append(f"    {name} --> [*]")
    for event, sources in hidden.items():
        states = sorted(set(sources), key=list(spec.states).index)
        lines.append(f"    %% internal {event} in {', '.join(states)}")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True, slots=True)
class _Node:
    id: str
    state: StateSpec
    parent: str | None

    @property
    def compound(self) -> bool:
        return bool(self.state.states) and not self.state.parallel


def _nodes(states: dict[str, StateSpec], parent: str | None = None) -> dict[str, _Node]:
    """Every state by its dotted id, in document order (a parent before its children)."""
    found: dict[str, _Node] = {}
    for name, state in states.items():
        state_id = name if parent is None else f"{parent}.{name}"
        found[state_id] = _Node(state_id, state, parent)
        found.update(_nodes(state.states, state_id))
    return found


def _diagram_ids(ids: list[str], reserved: str) -> dict[str, str]:
    """A unique Mermaid id per state id; a clash (``a.b`` and ``a__b``) gets a number."""
    taken = {reserved}
    names: dict[str, str] = {}
    for state_id in ids:
        base = candidate = state_id.replace(".", "__")
        number = 2
        while candidate in taken:
            candidate, number = f"{base}_{number}", number + 1
        taken.add(candidate)
        names[state_id] = candidate
    return names


class _NestedDiagram:
    """One nested chart's diagram: lines are collected per composite ("home",
    ``""`` for the chart's top) and written inside that composite's braces."""

    def __init__(self, spec: ChartSpec, internal: bool) -> None:
        self.spec = spec
        self.internal = internal
        self.nodes = _nodes(spec.states)
        self.order = {state_id: index for index, state_id in enumerate(self.nodes)}
        self.top = _diagram_ids([spec.name + "_regions"], "")[spec.name + "_regions"]
        self.ids = _diagram_ids(list(self.nodes), self.top)
        self.homed: dict[str, list[str]] = {}
        self.hidden: dict[str, set[str]] = {}

    def render(self) -> str:
        self._collect_transitions()
        self._collect_notes()
        lines = ["stateDiagram-v2"]
        top_level = [state_id for state_id, node in self.nodes.items() if node.parent is None]
        if self.spec.parallel:
            lines.append(f'{INDENT}state "{_label(self.spec.name)}" as {self.top} {{')
            lines += self._regions(top_level, 2)
            lines.append(INDENT + "}")
            lines.append(f"{INDENT}[*] --> {self.top}")
            lines += [INDENT + line for line in self.homed.get("", [])]
        else:
            lines += self._body("", top_level, self.spec.initial, 1)
        for event, sources in self.hidden.items():
            states = sorted(sources, key=self.order.__getitem__)
            lines.append(f"{INDENT}%% internal {event} in {', '.join(states)}")
        return "\n".join(lines) + "\n"

    # ------------------------------------------------------------ where lines go

    def _ancestors(self, state_id: str) -> list[str]:
        """Proper ancestors, innermost first, ending with ``""`` (the top)."""
        found = []
        parent = self.nodes[state_id].parent
        while parent is not None:
            found.append(parent)
            parent = self.nodes[parent].parent
        return [*found, ""]

    def _home(self, *state_ids: str) -> str:
        """The innermost compound (not parallel) proper ancestor of all of them."""
        common = [a for a in self._ancestors(state_ids[0]) if a == "" or self.nodes[a].compound]
        for other in state_ids[1:]:
            theirs = set(self._ancestors(other))
            common = [a for a in common if a in theirs]
        return common[0]

    def _sources(self, transition: TransitionSpec) -> list[str]:
        if ANY_STATE in transition.source:
            return [
                state_id
                for state_id, node in self.nodes.items()
                if not node.state.states and not node.state.final
            ]
        return list(transition.source)

    def _collect_transitions(self) -> None:
        for transition in self.spec.transitions:
            sources = [s for s in self._sources(transition) if s in self.nodes]
            if transition.target is None and not self.internal:
                self.hidden.setdefault(transition.event, set()).update(sources)
                continue
            for source in sources:
                target = transition.target or source
                if target not in self.nodes:
                    continue  # validation reports it; the drawing skips it
                self.homed.setdefault(self._home(source, target), []).append(
                    f"{self.ids[source]} --> {self.ids[target]} : {_transition_label(transition)}"
                )

    def _collect_notes(self) -> None:
        for timer in self.spec.timers:
            for state_id in timer.state:
                if state_id in self.nodes:
                    self._note(state_id, _timer_text(timer))
        for state_id, node in self.nodes.items():
            actions = []
            if node.state.entry:
                actions.append("on entry " + ", ".join(node.state.entry))
            if node.state.exit:
                actions.append("on exit " + ", ".join(node.state.exit))
            if actions:
                self._note(state_id, " / ".join(actions))
        for state_id, node in self.nodes.items():
            if node.state.final:
                self.homed.setdefault(self._home(state_id), []).append(
                    f"{self.ids[state_id]} --> [*]"
                )

    def _note(self, state_id: str, text: str) -> None:
        self.homed.setdefault(self._home(state_id), []).append(
            f"note right of {self.ids[state_id]} : {_label(text)}"
        )

    # ------------------------------------------------------------ writing blocks

    def _declare(self, state_id: str, depth: int) -> list[str]:
        node = self.nodes[state_id]
        head = f'{INDENT * depth}state "{_label(node.state.label)}" as {self.ids[state_id]}'
        if not node.state.states:
            return [head]
        children = [f"{state_id}.{name}" for name in node.state.states]
        if node.state.parallel:
            inner = self._regions(children, depth + 1)
        else:
            inner = self._body(state_id, children, node.state.initial, depth + 1)
        return [head + " {", *inner, INDENT * depth + "}"]

    def _body(self, home: str, children: list[str], initial: str | None, depth: int) -> list[str]:
        """A compound state's inside (or the top's): children, initial, its lines."""
        lines = [line for child in children for line in self._declare(child, depth)]
        if initial is not None:
            initial_id = initial if not home else f"{home}.{initial}"
            if initial_id in self.ids:
                lines.append(f"{INDENT * depth}[*] --> {self.ids[initial_id]}")
        lines += [INDENT * depth + line for line in self.homed.get(home, [])]
        return lines

    def _regions(self, regions: list[str], depth: int) -> list[str]:
        lines: list[str] = []
        for index, region in enumerate(regions):
            if index:
                lines.append(INDENT * depth + "--")
            lines += self._declare(region, depth)
        return lines


def diagram_ids(spec: ChartSpec) -> dict[str, str]:
    """Each state's id in `to_mermaid`'s diagram, by its dotted id: what a page
    names to style a state (the inspector lights up the active ones)."""
    if not is_nested(spec):
        return {name: name for name in spec.states}
    return dict(_NestedDiagram(spec, False).ids)
