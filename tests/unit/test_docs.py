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
