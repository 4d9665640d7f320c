"""The pages that name the code's modules name real ones.

docs/architecture.md, docs/operations.md and docs/embedding.md tell a reader
where things live; they were once written ahead of the code and drifted from
it. Every dotted `engine.` / `adapters.` / `channelsync.` path they write in
backticks must import (a module, or a name inside one), every repository path
they write in backticks must exist, and every import in a Python example of
the README or docs/ must resolve.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

from adapters.plugins import ENTRY_POINT_GROUP as ADAPTERS_GROUP
from engine.chartset import ENTRY_POINT_GROUP as CHARTS_GROUP
from engine.cli.demo import DEMO_ENTRY_POINT_GROUP
from engine.cli.main import COMMANDS_ENTRY_POINT_GROUP

ROOT = Path(__file__).resolve().parents[2]
PAGES = ("architecture.md", "operations.md", "embedding.md")
# Entry-point group names look like module paths but name no module.
ENTRY_POINT_GROUPS = {
    ADAPTERS_GROUP,
    CHARTS_GROUP,
    DEMO_ENTRY_POINT_GROUP,
    COMMANDS_ENTRY_POINT_GROUP,
}
PACKAGES = ("engine", "adapters", "channelsync", "statecharts")

FENCE = re.compile(r"^```.*?^```", re.S | re.M)
TICKED = re.compile(r"`([^`\n]+)`")
DOTTED = re.compile(r"\b((?:engine|adapters|channelsync)(?:\.[A-Za-z_]\w*)+)(?::([A-Za-z_]\w*))?")
REPO_PATH = re.compile(
    r"(?<![\w/.])((?:engine|adapters|channelsync|statecharts|tests|benchmarks|docs)/[\w./*<>-]*)"
)
PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
IMPORT = re.compile(r"^\s*from\s+([\w.]+)\s+import\s+([^#\n]+)|^\s*import\s+([\w.]+)", re.M)


def ticked(page: str) -> list[str]:
    """What the page writes in backticks, outside fenced blocks."""
    return TICKED.findall(FENCE.sub("", (ROOT / "docs" / page).read_text()))


def resolves(dotted: str) -> bool:
    """Whether ``dotted`` is a module, or a chain of attributes of one."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            target: object = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for name in parts[cut:]:
            if not hasattr(target, name):
                return False
            target = getattr(target, name)
        return True
    return False


def test_resolves_tells_real_names_from_stale_ones():
    assert resolves("engine.store.protocol.Store")
    assert resolves("engine.settings.EngineSettings.__post_init__")
    assert not resolves("engine.cli.main.app")  # the module-level app that build_cli replaced
    assert not resolves("adapters.no_such_module")


@pytest.mark.parametrize("page", PAGES)
def test_every_dotted_module_path_in_backticks_imports(page):
    stale = sorted(
        {
            f"{dotted}:{attribute}" if attribute else dotted
            for text in ticked(page)
            for dotted, attribute in DOTTED.findall(text)
            if dotted not in ENTRY_POINT_GROUPS
            and not resolves(f"{dotted}.{attribute}" if attribute else dotted)
        }
    )
    assert not stale, f"docs/{page} names modules or names that do not exist: {stale}"


@pytest.mark.parametrize("page", PAGES)
def test_every_repository_path_in_backticks_exists(page):
    missing = sorted(
        {
            path.rstrip(".")
            for text in ticked(page)
            for path in REPO_PATH.findall(text)
            # `adapters/<platform>/...` and `statecharts/*.py` stand for several files.
            if "<" not in path and "*" not in path and not (ROOT / path.rstrip(".")).exists()
        }
    )
    assert not missing, f"docs/{page} names paths that do not exist: {missing}"


def test_the_architecture_folder_tree_names_real_folders_and_files():
    page = (ROOT / "docs" / "architecture.md").read_text()
    tree = page[page.index("## The folders") :].split("```")[1]
    missing = []
    parent = ""
    for line in tree.splitlines():
        match = re.match(r"^( *)([\w.]+/?)\s", line + " ")
        if not match or not (match.group(2).endswith("/") or match.group(2).endswith(".py")):
            continue
        name = match.group(2)
        path = name if not match.group(1) else parent + name
        if not match.group(1):
            parent = name
        if not (ROOT / path).exists():
            missing.append(path)
    assert not missing, f"docs/architecture.md's folder tree names what does not exist: {missing}"


def example_imports() -> list[tuple[str, str]]:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    found = []
    for page in pages:
        for block in PYTHON_BLOCK.findall(page.read_text()):
            for module, names, plain in IMPORT.findall(block):
                if (module or plain).split(".")[0] not in PACKAGES:
                    continue
                targets = [plain] if plain else [name.strip() for name in names.split(",")]
                where = str(page.relative_to(ROOT))
                found += [
                    (where, f"{module}.{name.split(' as ')[0]}" if module else name)
                    for name in targets
                ]
    return found


def test_the_examples_import_what_exists():
    imports = example_imports()
    assert len(imports) >= 5, "the examples' imports were not found"
    broken = sorted({f"{where}: {name}" for where, name in imports if not resolves(name)})
    assert not broken, f"examples import names that do not exist: {broken}"
