"""The command line is assembled by `build_cli`, not by importing modules."""

from __future__ import annotations

import re

from typer.testing import CliRunner

from engine.cli.main import build_cli

ENGINE_COMMANDS = {
    "state",
    "export",
    "ingest",
    "replay",
    "migrate",
    "check",
    "history",
    "erase",
    "demo",
    "chart",
    "commands",
    "whatif",
    "inspect",
    "workers",
}
# Added by the channel's own entry points (statecharts, adapters).
CHANNEL_COMMANDS = {"serve", "sandbox", "orders", "shops", "shop", "products"}


def _listed(app) -> set[str]:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0, result.output
    commands = result.output.split("Commands")[1]
    return set(re.findall(r"^│ (\w+) ", commands, re.M))


def test_help_lists_every_command_of_the_engine_and_of_the_installed_packages():
    assert _listed(build_cli()) == ENGINE_COMMANDS | CHANNEL_COMMANDS


def test_without_plugins_only_the_engines_commands_are_there():
    assert _listed(build_cli(plugins=False)) == ENGINE_COMMANDS


def test_each_build_is_a_new_app():
    first, second = build_cli(plugins=False), build_cli(plugins=False)
    assert first is not second
    first.command("extra")(lambda: None)
    assert "extra" not in _listed(second)


def test_every_subcommand_answers_help():
    app = build_cli()
    for command in sorted(ENGINE_COMMANDS | CHANNEL_COMMANDS):
        result = CliRunner().invoke(app, [command, "--help"])
        assert result.exit_code == 0, (command, result.output)
