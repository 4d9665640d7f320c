"""The `channelsync` command line, built by `build_cli`.

The engine's own command modules each add their commands through
``register(app)``; installed packages add theirs through the entry point group
``channelsync.commands`` (a callable taking the app). Nothing is added at
import: `build_cli` assembles a fresh app each time it is called.
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import entry_points
from typing import Annotated

import typer

COMMANDS_ENTRY_POINT_GROUP = "channelsync.commands"
# The engine's command modules, one a line, each with ``register(app)``; named,
# not imported, so that a module added here is imported by `build_cli` alone.
ENGINE_COMMANDS = (
    "engine.cli.state_cmd",
    "engine.cli.charts_cmd",
    "engine.cli.log_cmd",
    "engine.cli.migrate_cmd",
    "engine.cli.replay_cmd",
    "engine.cli.inspect_cmd",
    "engine.cli.inspector_cmd",
    "engine.cli.commands_cmd",
    "engine.cli.dead_letters_cmd",
    "engine.cli.erase_cmd",
    "engine.cli.whatif_cmd",
    "engine.cli.demo",
    "engine.cli.workers_cmd",
)


def _configure(
    log_level: Annotated[
        str,
        typer.Option(
            "--log-level",
            envvar="CHANNELSYNC_LOG_LEVEL",
            help="Log lines at this level and above go to standard error.",
        ),
    ] = "WARNING",
) -> None:
    """Logs go to standard error, so `--json` output on standard output stays
    clean; `serve`, `sandbox` and `demo` choose their own level."""
    from engine.logs import configure_logging  # structlog: only once a command runs

    configure_logging(log_level)


def build_cli(*, plugins: bool = True) -> typer.Typer:
    """The command line: the engine's commands, then (with ``plugins``) those
    of every installed ``channelsync.commands`` entry point."""
    app = typer.Typer(
        name="channelsync",
        help="Keep a Shoplazza store and a TikTok Shop (US) in sync with declarative statecharts.",
        no_args_is_help=True,
        add_completion=False,
    )
    app.callback()(_configure)
    for module in ENGINE_COMMANDS:
        import_module(module).register(app)
    if plugins:
        for point in sorted(entry_points(group=COMMANDS_ENTRY_POINT_GROUP), key=lambda p: p.name):
            point.load()(app)
    return app


def main() -> None:
    """The `channelsync` console script."""
    build_cli()()


if __name__ == "__main__":
    main()
