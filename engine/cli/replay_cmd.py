"""`channelsync replay`: rebuild state from a log with the live step, no side
effects; with other chart files, where the outcomes would change (what-if).

The command's options live here and its work in `engine.cli.replay_run`,
imported when the command runs: this module is imported to build the
command line (engine/cli/main.py), which must not import the engine.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from engine.cli.common import JobsOption, StoreOption, fail, refuse_jobs_on_store, store_target

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def register(app: typer.Typer) -> None:
    app.command("replay")(replay_command)


def parse_until(text: str | None) -> tuple[int | None, float | None]:
    """``--until 1200`` is a sequence number; ``--until 2026-11-26T18:00:00Z`` a time."""
    if text is None:
        return None, None
    if text.isdigit():
        return int(text), None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise fail(f"--until takes a sequence number or an ISO time, not {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return None, moment.timestamp()


def replay_command(
    log_file: Annotated[Path | None, typer.Argument(help="A JSONL log (or use --db).")] = None,
    db: Annotated[Path | None, typer.Option("--db", help="The SQLite database file.")] = None,
    entity: Annotated[str | None, typer.Option("--entity", help="Only this entity.")] = None,
    until: Annotated[str | None, typer.Option("--until", help="A seq or an ISO time.")] = None,
    charts_dir: Annotated[
        Path | None,
        typer.Option("--charts", help="Replay under these chart files instead (what-if)."),
    ] = None,
    as_json: JsonOption = False,
    store_url: StoreOption = None,
    jobs: JobsOption = None,
) -> None:
    """Rebuild state from a log with the live step, no side effects. With
    --charts, report where other chart versions would change the outcome.
    `--db ... --json` of the whole log replays in --jobs processes."""
    if (log_file is None) == (db is None and store_url is None):
        raise fail("give either a JSONL file or --db (or --store)")
    target = store_target(db, store_url) if log_file is None else None
    refuse_jobs_on_store(target, jobs)
    until_seq, until_time = parse_until(until)
    from engine.cli.replay_run import run_replay

    run_replay(log_file, target, entity, until_seq, until_time, charts_dir, as_json, jobs)
