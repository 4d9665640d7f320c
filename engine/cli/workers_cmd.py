"""`channelsync workers`: a cluster's workers and its partitions' leases and lag.

    channelsync workers --store postgresql://... [--bus nats://...] [--json]

For every partition: its owner, epoch, seconds left on its lease, the stream
sequence committed with its state and, with ``--bus``, how many of its
messages are still unprocessed and how old the oldest of them is (read from
JetStream). Exit codes: 0 shown; 1 a server could not be reached; 2 bad input.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated, Any

import typer

from engine.cli.common import fail, out, print_json, print_table

if TYPE_CHECKING:
    from engine.cluster.jetstream import Backlog

StoreUrl = Annotated[
    str, typer.Option("--store", help="The cluster's PostgreSQL store (postgresql://...).")
]
BusUrl = Annotated[
    str | None,
    typer.Option("--bus", help="Its NATS JetStream (nats://...): adds each partition's backlog."),
]


def register(app: typer.Typer) -> None:
    app.command("workers")(workers)


def workers(
    store: StoreUrl,
    bus: BusUrl = None,
    stream: Annotated[str | None, typer.Option("--stream", help="The events stream.")] = None,
    prefix: Annotated[str | None, typer.Option("--prefix", help="Its subject prefix.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Show the live workers, and each partition's owner, epoch, lease, offset and lag."""
    import psycopg

    from engine.cluster.jetstream import BusUnavailable
    from engine.cluster.report import NoCluster

    if not store.startswith(("postgresql://", "postgres://")):
        raise fail(f"--store takes a postgresql:// URL, not {store!r}", 2)
    try:
        report = asyncio.run(_report(store, bus, stream, prefix))
    except NoCluster as error:
        raise fail(str(error)) from None
    except (psycopg.OperationalError, BusUnavailable) as error:
        # psycopg's message names the server, never the password.
        raise fail(str(error).strip().splitlines()[0]) from None
    if as_json:
        print_json(report)
        return
    _print(report)


async def _report(
    store: str, bus: str | None, stream: str | None, prefix: str | None
) -> dict[str, Any]:
    import psycopg

    from engine.cluster.report import lease_table, live_workers

    async with await psycopg.AsyncConnection.connect(store) as conn:
        leases = await lease_table(conn)
        members = await live_workers(conn)
    partitions = [asdict(row) for row in leases]
    if bus is not None:
        backlog = await _backlog(
            bus, stream, prefix, {row.partition: row.stream_seq for row in leases}
        )
        for row in partitions:
            lag = backlog.get(row["partition"])
            row["pending"] = None if lag is None else lag.pending
            row["oldest_age"] = None if lag is None else lag.oldest_age
    held = Counter(row.owner for row in leases if row.live)
    return {
        "workers": [
            {**asdict(member), "partitions": held.get(member.worker_id, 0)} for member in members
        ],
        "partitions": partitions,
        "unowned": sum(1 for row in leases if not row.live),
    }


async def _backlog(
    bus: str, stream: str | None, prefix: str | None, offsets: dict[int, int]
) -> Mapping[int, Backlog]:
    from engine.cluster.jetstream import (
        DEFAULT_PREFIX,
        DEFAULT_STREAM,
        connect_bus,
        partition_backlog,
    )

    connection = await connect_bus(bus)
    try:
        return await partition_backlog(
            connection.js,
            stream=stream or DEFAULT_STREAM,
            prefix=prefix or DEFAULT_PREFIX,
            offsets=offsets,
        )
    finally:
        await connection.close()


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def _print(report: dict[str, Any]) -> None:
    print_table(
        "Workers",
        [{**w, "heartbeat_age": _seconds(w["heartbeat_age"])} for w in report["workers"]],
        ["worker_id", "host", "pid", "partitions", "heartbeat_age"],
    )
    columns = ["partition", "owner", "epoch", "expires_in", "stream_seq"]
    if report["partitions"] and "pending" in report["partitions"][0]:
        columns += ["pending", "oldest_age"]
    rows = [
        {
            **row,
            "owner": row["owner"] if row["live"] else f"({row['owner'] or 'none'})",
            "expires_in": _seconds(row["expires_in"]),
            "oldest_age": _seconds(row.get("oldest_age")),
        }
        for row in report["partitions"]
    ]
    print_table("Partitions", rows, columns)
    if report["unowned"]:
        out.print(f"{report['unowned']} partition(s) without a live owner", highlight=False)


__all__ = ["register", "workers"]
