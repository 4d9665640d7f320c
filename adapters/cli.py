"""`channelsync serve`, `channelsync sandbox` and the channel's demo story."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from adapters.limits import HttpLimits
from engine.settings import RETENTION

if TYPE_CHECKING:
    from adapters.sandbox.webhooks import Faults
    from channelsync.settings import ChannelSettings

out = Console()

# serve's exit status when its writer process could not be kept running
# (ENG-12): not 0, so that a process manager restarts the whole service.
EXIT_WRITER_FAILED = 3


def stop_on_signals() -> asyncio.Event:
    """An event set by SIGINT or SIGTERM: how a long-running command stops cleanly."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


def _option(name: str, help: str) -> Any:
    return typer.Option(name, help=help)


PullInterval = Annotated[
    float,
    _option(
        "--pull-interval",
        "Seconds between TikTok pulls of orders and product statuses (0: off).",
    ),
]
ShoplazzaPullInterval = Annotated[
    float,
    _option(
        "--shoplazza-pull-interval",
        "Seconds between Shoplazza pulls of products, stock and fulfillments (0: off).",
    ),
]
GcTuning = Annotated[
    bool,
    _option(
        "--gc-tuning/--no-gc-tuning",
        "Freeze the startup heap and raise GC thresholds (engine.gc_tuning).",
    ),
]
Writer = Annotated[
    str,
    _option(
        "--writer",
        "Where SQLite's writes run: 'process' (a child process, the faster) or 'thread'.",
    ),
]
Plugins = Annotated[
    bool,
    _option(
        "--plugins/--no-plugins",
        "Run the adapter plugins installed under 'channelsync.adapters'.",
    ),
]
WriterMaxRestarts = Annotated[
    int,
    _option(
        "--writer-max-restarts",
        "Restarts of a dead writer process allowed within a minute; past them serve exits"
        f" with status {EXIT_WRITER_FAILED}.",
    ),
]
MaxBody = Annotated[int, _option("--max-body", "Largest webhook body accepted, in bytes.")]
MaxConnections = Annotated[
    int,
    _option(
        "--max-connections", "Client connections open at once (kept below the descriptor limit)."
    ),
]
HeaderTimeout = Annotated[
    float, _option("--header-timeout", "Seconds a client has to send its headers.")
]
BodyTimeout = Annotated[
    float, _option("--body-timeout", "Seconds a client has to send its body (or read a reply).")
]
KeepAlive = Annotated[
    float, _option("--keep-alive", "Seconds an idle kept-alive connection stays open.")
]
Inspector = Annotated[
    bool,
    _option(
        "--inspector/--no-inspector",
        "Serve the web inspector under /inspector, behind a token (CHANNELSYNC_INSPECTOR_TOKEN,"
        " or one written to <db>.inspector-token).",
    ),
]
DeadLetterDays = Annotated[
    float, _option("--dead-letter-days", "Days a dead letter is kept after it was last seen.")
]
Store = Annotated[
    str | None,
    _option("--store", "A PostgreSQL URL (postgresql://...) to run on instead of --db."),
]
Bus = Annotated[
    str | None,
    _option("--bus", "A NATS JetStream URL (nats://...): run as a cluster member (--role)."),
]
Role = Annotated[
    str,
    _option(
        "--role",
        "With --bus: 'receiver' (webhooks onto JetStream), 'worker' (leased partitions"
        " into the store) or 'all' (both).",
    ),
]
Workers = Annotated[
    int, _option("--workers", "With --bus: worker processes on this machine, supervised.")
]
LeaseTtl = Annotated[
    float, _option("--lease-ttl", "With --bus: seconds a worker's partition lease lasts.")
]


def register(app: typer.Typer) -> None:
    app.command()(serve)
    app.command()(sandbox)


def serve(
    db: Annotated[Path | None, typer.Option("--db", help="The SQLite database file.")] = None,
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port")] = 8080,
    pull_interval: PullInterval = 300.0,
    shoplazza_pull_interval: ShoplazzaPullInterval = 900.0,
    gc_tuning: GcTuning = True,
    writer: Writer = "process",
    plugins: Plugins = True,
    writer_max_restarts: WriterMaxRestarts = 5,
    max_body: MaxBody = HttpLimits.max_body,
    max_connections: MaxConnections = HttpLimits.max_connections,
    header_timeout: HeaderTimeout = HttpLimits.header_timeout,
    body_timeout: BodyTimeout = HttpLimits.body_timeout,
    keep_alive: KeepAlive = HttpLimits.keep_alive,
    dead_letter_days: DeadLetterDays = RETENTION / 86400,
    inspector: Inspector = False,
    store: Store = None,
    bus: Bus = None,
    role: Role = "all",
    workers: Workers = 1,
    lease_ttl: LeaseTtl = 10.0,
) -> None:
    """Run the receiver, the engine, the outbox and the timers in one process;
    with --store and --bus, a cluster member instead (docs/scaling.md).

    Secrets come from TIKTOK_APP_KEY, TIKTOK_APP_SECRET, SHOPLAZZA_CLIENT_SECRET
    (and SHOPLAZZA_ACCESS_TOKEN); TIKTOK_API_URL, TIKTOK_AUTH_URL and
    SHOPLAZZA_API_URL point the clients elsewhere (a sandbox)."""
    from adapters.http_server import run
    from engine.cli.in_use import refused_when_in_use
    from engine.logs import configure_logging

    configure_logging("INFO")
    try:
        target = _serve_target(db, store, bus, role, workers)
        settings = _serve_settings(
            target,
            pull_interval=pull_interval,
            shoplazza_pull_interval=shoplazza_pull_interval,
            writer_max_restarts=writer_max_restarts,
            writer=writer,
            dead_letter_days=dead_letter_days,
            limits=dict(
                max_body=max_body,
                max_connections=max_connections,
                header_timeout=header_timeout,
                body_timeout=body_timeout,
                keep_alive=keep_alive,
            ),
        )
    except ValueError as error:
        out.print(f"[red]error:[/red] {error}", highlight=False)
        raise typer.Exit(2) from None
    if bus is not None:
        from adapters.cli_cluster import ClusterRole, serve_cluster

        cluster = ClusterRole(str(target), bus, role, workers, lease_ttl, host, port, plugins)
        asyncio.run(serve_cluster(settings, cluster))
        return
    with refused_when_in_use():
        run(_serve(settings, host, port, plugins=plugins, gc_tuning=gc_tuning, inspector=inspector))


def _serve_target(
    db: Path | None, store: str | None, bus: str | None, role: str, workers: int
) -> Path | str:
    """The database serve runs on (a file, or a PostgreSQL URL); ValueError
    when the options do not make one way to run."""
    if (db is None) == (store is None):
        raise ValueError("give either --db (a SQLite file) or --store (a PostgreSQL URL)")
    if store is not None and not store.startswith(("postgresql://", "postgres://")):
        raise ValueError(f"--store takes a postgresql:// URL, not {store!r}")
    if bus is None:
        if role != "all" or workers != 1:
            raise ValueError("--role and --workers need --bus (and --store)")
        return db if db is not None else str(store)
    if store is None:
        raise ValueError("--bus needs --store: a cluster's workers share a PostgreSQL store")
    if role not in ("receiver", "worker", "all"):
        raise ValueError(f"--role is 'receiver', 'worker' or 'all', not {role!r}")
    if workers < 1:
        raise ValueError(f"--workers must be at least 1, not {workers}")
    return store


def sandbox(
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    tiktok_port: Annotated[int, typer.Option("--tiktok-port")] = 8081,
    shoplazza_port: Annotated[int, typer.Option("--shoplazza-port")] = 8082,
    webhook_url: Annotated[
        str,
        _option("--webhook-url", "Where to send webhooks (a running `channelsync serve`)."),
    ] = "http://127.0.0.1:8080",
    drop: Annotated[float, typer.Option(help="Fraction of TikTok webhooks dropped.")] = 0.0,
    duplicate: Annotated[float, typer.Option(help="Fraction of webhooks sent twice.")] = 0.0,
    api_failure: Annotated[float, typer.Option(help="Fraction of API calls failing.")] = 0.0,
) -> None:
    """Run the TikTok Shop and Shoplazza sandboxes standalone, for integrators.

    Credentials: app key sandbox-app-key, app secret sandbox-app-secret,
    Shoplazza client secret sandbox-client-secret, access token
    sandbox-access-token, store demo-store."""
    from adapters.sandbox.webhooks import Faults
    from engine.logs import configure_logging

    configure_logging("INFO")
    faults = Faults(drop=drop, duplicate=duplicate, api_failure=api_failure)
    asyncio.run(_run_sandboxes(host, tiktok_port, shoplazza_port, webhook_url, faults))


async def _run_sandboxes(
    host: str, tiktok_port: int, shoplazza_port: int, webhook_url: str, faults: Faults
) -> None:
    """Both sandboxes on their ports until a signal, sending webhooks to ``webhook_url``."""
    from adapters.http_server import HttpServer
    from adapters.sandbox import story
    from adapters.sandbox.shoplazza import ShoplazzaSandbox
    from adapters.sandbox.tiktok import TikTokSandbox
    from engine.clock import SystemClock

    clock = SystemClock()
    tiktok = TikTokSandbox(
        story.APP_KEY,
        story.APP_SECRET,
        clock,
        webhook_url=f"{webhook_url}/webhooks/tiktok",
        faults=faults,
    )
    shoplazza = ShoplazzaSandbox(
        story.STORE,
        story.CLIENT_SECRET,
        story.SHOPLAZZA_TOKEN,
        clock,
        webhook_url=f"{webhook_url}/webhooks/shoplazza",
    )
    servers = [
        await HttpServer(tiktok.app, host, tiktok_port).start(),
        await HttpServer(shoplazza.app, host, shoplazza_port).start(),
    ]
    out.print(
        f"TikTok Shop sandbox on {servers[0].url}, Shoplazza sandbox on "
        f"{servers[1].url}; webhooks to {webhook_url}",
        highlight=False,
    )
    stop = stop_on_signals()
    while not stop.is_set():
        tiktok.tick()
        await tiktok.webhooks.flush()
        await shoplazza.webhooks.flush()
        await asyncio.sleep(0.5)
    for server in servers:
        await server.stop()


def _serve_settings(
    db: Path | str,
    *,
    pull_interval: float,
    shoplazza_pull_interval: float,
    writer_max_restarts: int,
    writer: str,
    dead_letter_days: float,
    limits: dict[str, Any],
) -> ChannelSettings:
    """serve's settings: secrets from the environment, the rest from its
    options. Raises ValueError (a `ConfigError` among them) saying what is wrong."""
    from channelsync.settings import ChannelSettings
    from engine.settings import EngineSettings

    if writer not in ("process", "thread"):
        raise ValueError(f"--writer is 'process' or 'thread', not {writer!r}")
    if not dead_letter_days > 0:
        raise ValueError("--dead-letter-days must be positive")
    return ChannelSettings.from_env(
        db,
        pull_interval=pull_interval,
        shoplazza_pull_interval=shoplazza_pull_interval,
        writer_max_restarts=writer_max_restarts,
        limits=HttpLimits(**limits),
        engine=EngineSettings(writer=writer, dead_letter_retention=dead_letter_days * 86400),
    )


async def _serve(
    settings: ChannelSettings,
    host: str,
    port: int,
    *,
    plugins: bool,
    gc_tuning: bool,
    inspector: bool = False,
) -> None:
    """Run the channel until a signal, or until its writer cannot be kept running."""
    from adapters.plugins import PluginError
    from channelsync.bootstrap import open_service
    from engine.gc_tuning import tune_gc

    try:
        # Refuses at once (DatabaseInUse) if another process writes to the file.
        service = await open_service(settings, plugins=None if plugins else [])
    except PluginError as error:
        out.print(f"[red]error:[/red] {error}", highlight=False)
        raise typer.Exit(2) from None
    if gc_tuning:
        tune_gc()
    mounted = _mount_inspector(service, settings) if inspector else None
    try:
        await service.serve(host, port)
    except ValueError as error:  # too few descriptors to hold any connection
        await service.stop()
        out.print(f"[red]error:[/red] {error}", highlight=False)
        raise typer.Exit(2) from None
    out.print(
        f"listening on http://{host}:{service.http.port if service.http else port}",
        highlight=False,
    )
    if mounted is not None:
        out.print(f"inspector under /inspector/ ({mounted[1]})", highlight=False, soft_wrap=True)
    stop = stop_on_signals()
    signalled = asyncio.create_task(stop.wait())
    gave_up = asyncio.create_task(service.supervisor.wait_failed())
    await asyncio.wait((signalled, gave_up), return_when=asyncio.FIRST_COMPLETED)
    for task in (signalled, gave_up):
        task.cancel()
    if mounted is not None:
        from engine.inspector import close_inspector

        close_inspector(mounted[0])  # its live streams would hold the server open
    try:
        await service.stop()
    except Exception as error:  # the exit status below matters more
        out.print(f"[red]error:[/red] stopping failed: {error}", highlight=False)
    if service.supervisor.failure is not None:
        out.print(
            f"[red]error:[/red] {service.supervisor.failure}; serve exits for its"
            " process manager to restart it",
            highlight=False,
        )
        raise typer.Exit(EXIT_WRITER_FAILED)


def _mount_inspector(service: Any, settings: ChannelSettings) -> tuple[Any, str]:
    """Mount the inspector on serve's receiver: its app, and where its token is
    (never the token itself)."""
    from engine.inspector.mounted import TOKEN_VARIABLE, inspector_token, mount_inspector

    token, path = inspector_token(settings.db)
    app = mount_inspector(service.receiver, service.engine, token)
    return app, f"token in {path}" if path is not None else f"token from {TOKEN_VARIABLE}"


def play_demo(db: Path) -> None:
    """The channel's demo story (the `channelsync.demo` entry point)."""
    from adapters.sandbox.story import Sandboxes, play

    async def run() -> None:
        box = await Sandboxes.start(db)
        try:
            await play(
                box, lambda line: out.print(f"[bold]>[/bold] {line}", highlight=False), _show
            )
        finally:
            await box.stop()

    asyncio.run(run())


def _show(title: str, rows: list[dict[str, Any]]) -> None:
    """The demo prints the merchant's own lists (labels, reasons, Shoplazza status)."""
    from statecharts.cli import order_table, product_table

    products = "product_id" in rows[0] if rows else title.startswith("Product")
    table = product_table if products else order_table
    out.print(table(rows, title), highlight=False)
