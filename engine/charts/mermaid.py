"""Render a chart as a Mermaid ``stateDiagram-v2`` (README, docs, reviews)."""

from __future__ import annotations

from engine.charts.loader import expand_sources
from engine.charts.schema import ChartSpec, parse_duration


def _duration_text(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def _label(text: str) -> str:
    # Mermaid ends a label at a newline and chokes on ';' and '#'.
    return text.replace("\n", " ").replace(";", ",").replace("#", "").replace('"', "'")


def to_mermaid(spec: ChartSpec, *, internal: bool = False) -> str:
    """The chart as a diagram. Internal transitions (no target: bookkeeping that
    never changes the state) are drawn as self-loops only with ``internal``;
    otherwise they are listed in ``%%`` comments, so the lifecycle stays legible."""
    lines = ["stateDiagram-v2"]
    for name, state in spec.states.items():
        lines.append(f'    state "{_label(state.label)}" as {name}')
    lines.append(f"    [*] --> {spec.initial}")
    hidden: dict[str, list[str]] = {}
    for transition in spec.transitions:
        if transition.target is None and not internal:
            hidden.setdefault(transition.event, []).extend(expand_sources(spec, transition))
            continue
        label = transition.event
        if transition.guards:
            label += " [" + ", ".join(transition.guards) + "]"
        for source in expand_sources(spec, transition):
            target = transition.target or source
            lines.append(f"    {source} --> {target} : {_label(label)}")
    for timer in spec.timers:
        when = (
            f"after {_duration_text(parse_duration(timer.after))}"
            if timer.after is not None
            else f"at {timer.at}"
        )
        for state_name in timer.state:
            lines.append(
                f"    note right of {state_name} : timer {timer.name}, {when}, fires {timer.event}"
            )
    for name, state in spec.states.items():
        if state.final:
            lines.append(f"    {name} --> [*]")
    for event, sources in hidden.items():
        states = sorted(set(sources), key=list(spec.states).index)
        lines.append(f"    %% internal {event} in {', '.join(states)}")
    return "\n".join(lines) + "\n"
