"""The `channelsync` command line, built by `build_cli`.

The engine's own command modules each add their commands through
``register(app)``; installed packages add theirs through the entry point group
``channelsync.commands`` (a callable taking the app). Nothing is added at
import: `build_cli` assembles a fresh app each time it is called.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Annotated

import typer

from engine.cli import (
    charts_cmd,
    commands_cmd,
    dead_letters_cmd,
    demo,
    erase_cmd,
    inspect_cmd,
    inspector_cmd,
    log_cmd,
    migrate_cmd,
    replay_cmd,
    state_cmd,
    whatif_cmd,
    workers_cmd,
)
from engine.logs import configure_logging

COMMANDS_ENTRY_POINT_GROUP = "channelsync.commands"
ENGINE_COMMANDS = (
    state_cmd,
    charts_cmd,
    log_cmd,
    migrate_cmd,
    replay_cmd,
    migrate_cmd,
    inspect_cmd,
    inspector_cmd,
    commands_cmd,
    dead_letters_cmd,
    erase_cmd,
    whatif_cmd,
    demo,
    workers_cmd,
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
        module.register(app)
    if plugins:
        for point in sorted(entry_points(group=COMMANDS_ENTRY_POINT_GROUP), key=lambda p: p.name):
            point.load()(app)
    return app


def main() -> None:
    """The `channelsync` console script."""
    build_cli()()


if __name__ == "__main__":
    main()
