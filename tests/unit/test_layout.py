"""The tree keeps the shape a newcomer can read.

- No module in engine/ over 350 lines and no function there over 60 lines
  (counted from its ``def`` line to its last line, docstring included), unless
  its docstring holds the marker ``must be long:`` followed by the reason, as in
  ``\"\"\"... This must be long: one match over every command type.\"\"\"``
  (a module's own docstring exempts the module, a function's the function).
- No SQL escape hatch outside the store package: no file in adapters/ or
  statecharts/ names ``SQLiteStore``, ``fetchall`` or ``execute_write``.
- No ``# type: ignore`` in statecharts/: rule functions are typed through
  ``StepContext[PayloadType]``.
- tests/ and benchmarks/ never import each other: what both need lives in a
  module of its own (``adapters.sandbox.load``).
- engine/ is platform-blind: it imports nothing from adapters/, statecharts/
  or the composition root (channelsync/); they build on it, never the reverse.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MAX_MODULE_LINES = 350
MAX_FUNCTION_LINES = 60
MARKER = "must be long:"
SQL_ESCAPES = re.compile(r"SQLiteStore|fetchall|execute_write")
TYPE_IGNORE = re.compile(r"#\s*type:\s*ignore")


def python_files(folder: Path) -> Iterator[Path]:
    yield from sorted(p for p in folder.rglob("*.py") if "__pycache__" not in p.parts)


def text_files(folder: Path) -> Iterator[Path]:
    for path in sorted(folder.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            yield path


def exempt(node: ast.Module | ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    docstring = ast.get_docstring(node, clean=False)
    return docstring is not None and MARKER in docstring


def oversized(path: Path, root: Path) -> list[str]:
    """Each way ``path`` breaks the size limits, as ``file:line name (n lines)``."""
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source, str(path))
    name = path.relative_to(root).as_posix()
    found = []
    lines = len(source.splitlines())
    if lines > MAX_MODULE_LINES and not exempt(tree):
        found.append(f"{name}: module of {lines} lines")
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        span = (node.end_lineno or node.lineno) - node.lineno + 1
        if span > MAX_FUNCTION_LINES and not exempt(node):
            found.append(f"{name}:{node.lineno} {node.name} ({span} lines)")
    return found


def matching(folder: Path, pattern: re.Pattern[str], root: Path) -> list[str]:
    found = []
    for path in text_files(folder):
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if pattern.search(line):
                found.append(f"{path.relative_to(root).as_posix()}:{number}: {line.strip()}")
    return found


def imported_modules(path: Path) -> Iterator[str]:
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module


def imports_of(folder: Path, package: str, root: Path) -> list[str]:
    """Where a module under ``folder`` imports ``package`` (or one of its modules)."""
    return [
        f"{path.relative_to(root).as_posix()} imports {module}"
        for path in python_files(folder)
        for module in imported_modules(path)
        if module == package or module.startswith(f"{package}.")
    ]


# The tree itself.


def test_no_module_or_function_in_engine_is_longer_than_the_limits():
    found = [problem for path in python_files(ROOT / "engine") for problem in oversized(path, ROOT)]
    assert not found, (
        f"over {MAX_MODULE_LINES} lines a module or {MAX_FUNCTION_LINES} a function; split it,"
        f" or say in its docstring why it {MARKER} ...:\n" + "\n".join(found)
    )


@pytest.mark.parametrize("folder", ["adapters", "statecharts"])
def test_no_raw_sql_outside_the_store_package(folder):
    found = matching(ROOT / folder, SQL_ESCAPES, ROOT)
    assert not found, "go through the Store (engine/store/) instead:\n" + "\n".join(found)


def test_statecharts_need_no_type_ignore():
    found = matching(ROOT / "statecharts", TYPE_IGNORE, ROOT)
    assert not found, "\n".join(found)


@pytest.mark.parametrize(("folder", "other"), [("tests", "benchmarks"), ("benchmarks", "tests")])
def test_tests_and_benchmarks_do_not_import_each_other(folder, other):
    found = imports_of(ROOT / folder, other, ROOT)
    assert not found, "share it through adapters.sandbox.load instead:\n" + "\n".join(found)


@pytest.mark.parametrize("outer", ["adapters", "statecharts", "channelsync"])
def test_the_engine_imports_nothing_built_on_it(outer):
    found = imports_of(ROOT / "engine", outer, ROOT)
    assert not found, "the engine must not know the platforms or the app:\n" + "\n".join(found)


# The checks catch what they are for (and spare what they should).


def write(root: Path, name: str, text: str) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def function(name: str, body_lines: int, docstring: str = "") -> str:
    doc = f'    """{docstring}"""\n' if docstring else ""
    return f"def {name}() -> None:\n{doc}" + "    x = 1\n" * body_lines


def test_a_long_function_is_named_with_its_line_and_length(tmp_path):
    path = write(tmp_path, "engine/m.py", "import os\n\n" + function("big", 60))
    assert oversized(path, tmp_path) == ["engine/m.py:3 big (61 lines)"]
    path.write_text(function("fits", 59))
    assert oversized(path, tmp_path) == []


def test_a_long_method_or_nested_function_counts_too(tmp_path):
    nested = "class C:\n    def outer(self) -> None:\n" + "        y = 2\n" * 70
    path = write(tmp_path, "engine/c.py", nested)
    assert oversized(path, tmp_path) == ["engine/c.py:2 outer (71 lines)"]


def test_the_marker_in_its_docstring_exempts_a_function_or_module(tmp_path):
    path = write(tmp_path, "engine/m.py", function("big", 70, "This must be long: one match."))
    assert oversized(path, tmp_path) == []
    path.write_text(function("big", 70, "Long, as it happens."))
    assert oversized(path, tmp_path) == ["engine/m.py:1 big (72 lines)"]
    small = "".join(function(f"f{n}", 5) for n in range(80))
    path.write_text(small)
    assert oversized(path, tmp_path) == ["engine/m.py: module of 480 lines"]
    path.write_text(f'"""Tables. This must be long: generated."""\n{small}')
    assert oversized(path, tmp_path) == []


def test_raw_sql_and_type_ignores_are_found_in_any_file(tmp_path):
    write(tmp_path, "adapters/a.py", "rows = await store.fetchall('SELECT 1')\n")
    write(tmp_path, "adapters/notes.txt", "uses SQLiteStore\n")
    write(tmp_path, "adapters/ok.py", "store = open_store()\n")
    assert matching(tmp_path / "adapters", SQL_ESCAPES, tmp_path) == [
        "adapters/a.py:1: rows = await store.fetchall('SELECT 1')",
        "adapters/notes.txt:1: uses SQLiteStore",
    ]
    write(tmp_path, "statecharts/r.py", "x = ctx.payload.sku  # type: ignore[attr-defined]\n")
    assert len(matching(tmp_path / "statecharts", TYPE_IGNORE, tmp_path)) == 1


def test_imports_between_tests_and_benchmarks_are_found_in_every_form(tmp_path):
    write(tmp_path, "tests/a.py", "from benchmarks.webhooks import webhook_bodies\n")
    write(tmp_path, "tests/b.py", "def f():\n    import benchmarks\n")
    write(tmp_path, "tests/c.py", "import benchmarks_data\nfrom .benchmarks import x\n")
    assert imports_of(tmp_path / "tests", "benchmarks", tmp_path) == [
        "tests/a.py imports benchmarks.webhooks",
        "tests/b.py imports benchmarks",
    ]
