"""The repository documents itself: every rule id it cites is defined in
docs/rules.md, and no file points to a document the repository does not hold."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RULE_ID = re.compile(r"\b(?:CONN|LOGI|PROD|ORD|PLAT|ENG|SEC|OPS)-\d+\b")
OUTSIDE_DOC = re.compile(r"\b(?:SPEC|DESIGN|PLATFORMS)\.md\b|\.\./shared\b")
SOURCES = ("engine", "adapters", "statecharts", "tests", "benchmarks", "docs")
SUFFIXES = {".py", ".yaml", ".md", ".toml", ".txt"}


def project_files() -> list[Path]:
    files = [ROOT / "README.md", ROOT / "pyproject.toml"]
    for folder in SOURCES:
        files += [
            path
            for path in (ROOT / folder).rglob("*")
            if path.suffix in SUFFIXES and "__pycache__" not in path.parts
        ]
    return [path for path in files if path.is_file()]


def test_every_cited_rule_id_is_defined_in_docs_rules():
    defined = set(
        re.findall(
            r"\*\*((?:CONN|LOGI|PROD|ORD|PLAT|ENG|SEC|OPS)-\d+)\*\*",
            (ROOT / "docs" / "rules.md").read_text(),
        )
    )
    cited: dict[str, str] = {}
    for path in project_files():
        for rule in RULE_ID.findall(path.read_text(errors="replace")):
            cited.setdefault(rule, str(path.relative_to(ROOT)))
    undefined = {rule: where for rule, where in cited.items() if rule not in defined}
    assert not undefined, f"rule ids cited but not defined in docs/rules.md: {undefined}"


def test_no_file_refers_to_a_document_outside_the_repository():
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in project_files()
        if path.name != "test_docs.py"
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1)
        if OUTSIDE_DOC.search(line)
    ]
    assert not offenders, f"these lines cite documents outside the repository: {offenders}"


def test_links_between_docs_resolve():
    broken = []
    for page in [ROOT / "README.md", *(ROOT / "docs").rglob("*.md")]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if "://" in target:
                continue
            if not (page.parent / target).exists():
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
    assert not broken, f"links to files that do not exist: {broken}"


README_MAX_LINES = 350
REQUIRED_PAGES = ("architecture.md", "charts.md", "operations.md", "performance.md", "rules.md")


def test_readme_stays_a_users_document_under_350_lines():
    lines = len((ROOT / "README.md").read_text().splitlines())
    assert lines < README_MAX_LINES, (
        f"README.md has {lines} lines; details belong in docs/ (README under {README_MAX_LINES})"
    )


def test_docs_holds_the_pages_the_readme_relies_on():
    missing = [page for page in REQUIRED_PAGES if not (ROOT / "docs" / page).is_file()]
    assert not missing, f"docs/ lacks {missing}"


def test_the_docs_index_lists_every_page():
    index = (ROOT / "docs" / "index.md").read_text()
    pages = sorted(path.name for path in (ROOT / "docs").glob("*.md") if path.name != "index.md")
    unlisted = [page for page in pages if f"]({page})" not in index]
    assert not unlisted, f"docs/index.md does not list {unlisted}"


def test_each_decision_records_context_options_figures_and_choice():
    incomplete = {
        path.name: [
            part for part in ("Context", "Options", "Measured", "Choice") if f"**{part}" not in text
        ]
        for path in sorted((ROOT / "docs" / "decisions").glob("*.md"))
        for text in [path.read_text()]
    }
    incomplete = {name: parts for name, parts in incomplete.items() if parts}
    assert not incomplete, f"decision pages missing sections: {incomplete}"
    listed = (ROOT / "docs" / "performance.md").read_text()
    unlisted = [
        path.name
        for path in (ROOT / "docs" / "decisions").glob("*.md")
        if f"](decisions/{path.name})" not in listed
    ]
    assert not unlisted, f"docs/performance.md does not list the decisions {unlisted}"
