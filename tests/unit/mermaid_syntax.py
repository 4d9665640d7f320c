"""A reader for the stateDiagram-v2 subset `engine.charts.mermaid` writes.

No Mermaid renderer runs in the suite, so the tests read the diagram back
line by line: every line must be one of the forms below, at the indentation
of its composite; braces balance; every state is declared exactly once;
``--`` separates regions only inside a composite; every edge and note names
declared states. What it returns (where each state sits, each composite's
initial, its regions, the edges by composite) lets the tests assert the
chart's structure survives the drawing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

ID = r"[A-Za-z][A-Za-z0-9_]*"
END = rf"\[\*\]|{ID}"
LABEL = r"[^;#\"\n]+"
DECLARE = re.compile(rf'^state "({LABEL})" as ({ID})( \{{)?$')
EDGE = re.compile(rf"^({END}) --> ({END})(?: : ({LABEL}))?$")
NOTE = re.compile(rf"^note right of ({ID}) : ({LABEL})$")
INDENT = "    "


@dataclass
class Diagram:
    """What a diagram declares; ``None`` stands for the diagram's top level."""

    parents: dict[str, str | None] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    composites: set[str] = field(default_factory=set)
    # Per composite: its ``--``-separated groups' declared children.
    regions: dict[str | None, list[list[str]]] = field(default_factory=dict)
    initials: dict[str | None, list[str]] = field(default_factory=dict)
    edges: list[tuple[str, str, str | None, str | None]] = field(default_factory=list)
    notes: list[tuple[str, str, str | None]] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)

    def edge_labels(self, source: str, target: str) -> list[str | None]:
        return [label for s, t, label, _ in self.edges if (s, t) == (source, target)]

    def block_of_edge(self, source: str, target: str) -> str | None:
        blocks = {block for s, t, _, block in self.edges if (s, t) == (source, target)}
        assert len(blocks) == 1, f"{source} --> {target} drawn in {blocks}"
        return blocks.pop()


def parse_state_diagram(text: str) -> Diagram:
    """The diagram's structure; AssertionError naming the first line that is off."""
    lines = text.rstrip("\n").split("\n")
    assert lines[0] == "stateDiagram-v2", "a diagram starts with stateDiagram-v2"
    diagram = Diagram(regions={None: [[]]})
    open_blocks: list[str | None] = [None]
    for number, line in enumerate(lines[1:], 2):
        where = f"line {number}: {line!r}"
        # A closing brace sits at its composite's own indentation, the rest inside it.
        depth = len(open_blocks) - (line.strip() == "}")
        body = line[len(INDENT) * depth :]
        assert line == INDENT * depth + body and not body.startswith(" "), (
            f"{where} is not indented for its composite"
        )
        block = open_blocks[-1]
        if body == "}":
            assert block is not None, f"{where} closes nothing"
            open_blocks.pop()
        elif body == "--":
            assert block is not None, f"{where}: regions are separated inside a composite"
            diagram.regions[block].append([])
        elif declared := DECLARE.match(body):
            label, state, opens = declared.groups()
            assert state not in diagram.parents, f"{where} declares {state} again"
            diagram.parents[state], diagram.labels[state] = block, label
            diagram.regions[block][-1].append(state)
            if opens:
                diagram.composites.add(state)
                diagram.regions[state] = [[]]
                open_blocks.append(state)
        elif edge := EDGE.match(body):
            source, target, label = edge.groups()
            if source == "[*]":
                diagram.initials.setdefault(block, []).append(target)
            diagram.edges.append((source, target, label, block))
        elif note := NOTE.match(body):
            diagram.notes.append((note.group(1), note.group(2), block))
        elif body.startswith("%%"):
            diagram.comments.append(body)
        else:
            raise AssertionError(f"{where} is not stateDiagram-v2 as written here")
    assert open_blocks == [None], f"unclosed composites {open_blocks[1:]}"
    _check_references(diagram)
    return diagram


def _check_references(diagram: Diagram) -> None:
    for source, target, _label, _block in diagram.edges:
        for end in (source, target):
            assert end == "[*]" or end in diagram.parents, f"undeclared {end}"
    for state, _text, _block in diagram.notes:
        assert state in diagram.parents, f"a note on undeclared {state}"
    assert None in diagram.initials, "an initial state at the top"
