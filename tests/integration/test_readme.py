"""The README's embedding example runs as written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_readme_embedding_example_runs(tmp_path):
    readme = (ROOT / "README.md").read_text()
    example = re.search(r"## Embedding the engine.*?```python\n(.*?)```", readme, re.S).group(1)
    result = subprocess.run(
        [sys.executable, "-c", example], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "transitioned created -> packed"
    assert lines[1] == "duplicate"
    assert "state='packed'" in lines[2]


def test_readme_opens_with_the_install_and_test_commands():
    readme = (ROOT / "README.md").read_text().splitlines()
    block = readme[readme.index("```bash") + 1 : readme.index("```", readme.index("```bash") + 1)]
    commands = [line for line in block if not line.startswith("#")]
    assert commands[0].endswith("channelsync demo")
    ci = (ROOT / ".ci" / "run").read_text().splitlines()[-1]
    assert ci == commands[1], ".ci/run runs exactly the README's test command"


def test_readme_shows_each_channel_charts_current_diagram():
    from typer.testing import CliRunner

    from engine.cli.main import build_cli

    readme = (ROOT / "README.md").read_text()
    for name in ("shop_connection", "product_listing", "order"):
        diagram = CliRunner().invoke(build_cli(), ["chart", "show", name]).stdout
        assert f"```mermaid\n{diagram}```" in readme, f"README's {name} diagram is stale"
