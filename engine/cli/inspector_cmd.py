"""`channelsync inspect`: the web inspector on loopback, over a database.

    channelsync inspect (--db sync.db | --store postgresql://...) [--port 8090] [--show-pii]

The database is read read-only; actions (retry a dead letter or a command,
discard a command) go through an engine opened for the moment they take
(docs/inspector.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from engine.cli.common import (
    DbOption,
    StoreOption,
    fail,
    load_charts,
    open_existing,
    out,
    store_target,
)

if TYPE_CHECKING:
    from engine.chartset import ChartSet

# The inspector, the store and uvicorn are imported when the command runs: this
# module is imported to build the command line (engine/cli/main.py).

HOST = "127.0.0.1"


def register(app: typer.Typer) -> None:
    app.command("inspect")(inspect)


def inspect(
    db: DbOption = None,
    store_url: StoreOption = None,
    port: Annotated[
        int, typer.Option("--port", help="Port on 127.0.0.1 (0: any free one).")
    ] = 8090,
    show_pii: Annotated[
        bool,
        typer.Option(
            "--show-pii",
            help="Show buyers' personal data: sealed values opened with the keys file beside"
            " the database, dead letters' input unmasked.",
        ),
    ] = False,
) -> None:
    """Serve the web inspector on 127.0.0.1 and print its address (Ctrl-C stops it)."""
    target = store_target(db, store_url)
    charts = load_charts()
    try:
        listener = socket.create_server((HOST, port))
    except OSError as error:
        raise fail(f"cannot listen on {HOST}:{port}: {error.strerror or error}") from None
    asyncio.run(_serve(target, charts, listener, show_pii))


async def _serve(db: Path | str, charts: ChartSet, listener: socket.socket, show_pii: bool) -> None:
    import uvicorn

    from engine.inspector import Detached, Presenter, build_inspector
    from engine.store.urls import vault_path
    from engine.vault import Vault

    store = await open_existing(db)
    keys = vault_path(db)
    vault = Vault(keys) if show_pii and Path(keys).exists() else None
    backend = Detached(
        store,
        charts,
        Presenter(show_pii=show_pii, vault=vault),
        open_writable=lambda: open_existing(db, writable=True),
        target=db,
    )
    app = build_inspector(backend, loopback_only=True)
    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=1, lifespan="off")
    server = uvicorn.Server(config)
    address = f"http://{HOST}:{listener.getsockname()[1]}/"
    out.print(f"inspector on {address}", highlight=False)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, lambda: setattr(server, "should_exit", True))
    try:
        await server.serve(sockets=[listener])
    finally:
        await store.close()
        if vault is not None:
            with contextlib.suppress(Exception):
                vault.close()
