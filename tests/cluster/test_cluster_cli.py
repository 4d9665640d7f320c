"""`channelsync serve --store ... --bus ... --role ...` and `channelsync workers`:
the options that do not make one way to run are refused, and serve runs
supervised channel workers that share the partitions and give them back on
SIGTERM (ENG-11)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cluster.cluster_support import all_owned, leases, prepare, wait_for
from tests.conftest import invoke_cli

ROOT = Path(__file__).resolve().parents[2]
SECRETS = {"TIKTOK_APP_KEY": "k", "TIKTOK_APP_SECRET": "s", "SHOPLAZZA_CLIENT_SECRET": "c"}


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--bus", "nats://127.0.0.1:4222"], "either --db"),
        (["--db", "x.db", "--bus", "nats://127.0.0.1:4222"], "--bus needs --store"),
        (["--db", "x.db", "--role", "worker"], "need --bus"),
        (["--db", "x.db", "--store", "postgresql://h/db"], "either --db"),
        (["--store", "x.db"], "postgresql:// URL"),
        (["--store", "postgresql://h/db", "--bus", "nats://h", "--role", "boss"], "--role is"),
        (["--store", "postgresql://h/db", "--bus", "nats://h", "--workers", "0"], "at least 1"),
    ],
)
async def test_serve_refuses_options_that_make_no_way_to_run(args: list[str], says: str) -> None:
    result = await invoke_cli("serve", *args)
    assert result.exit_code == 2
    assert says in result.output


def test_supervised_worker_processes_pull_on_the_intervals_serve_was_given() -> None:
    """Each worker pulls the shops of its partitions: a worker process that
    started with serve's default intervals would pull on other ones."""
    from adapters.cli_cluster import ClusterRole
    from channelsync.settings import ChannelSettings

    role = ClusterRole("postgresql://h/db", "nats://h", "all", 2, 10.0, "127.0.0.1", 0, True)
    settings = ChannelSettings(db="postgresql://h/db", pull_interval=60, shoplazza_pull_interval=0)
    args = role.worker_args(settings)
    pairs = dict(zip(args[::2], args[1::2], strict=True))
    assert float(pairs["--pull-interval"]) == 60.0
    assert float(pairs["--shoplazza-pull-interval"]) == 0.0


async def test_workers_refuses_a_file_and_a_database_no_worker_ran_on(
    pg_database_url: str,
) -> None:
    result = await invoke_cli("workers", "--store", "sync.db")
    assert result.exit_code == 2 and "postgresql://" in result.output
    result = await invoke_cli("workers", "--store", pg_database_url)
    assert result.exit_code == 1 and "no cluster worker has run" in result.output


@pytest.mark.slow  # three processes loading the channel: about a minute on a loaded machine
@pytest.mark.services
async def test_serve_runs_supervised_workers_that_share_and_give_back_the_partitions(
    pg_database_url: str, nats_server_url: str, tmp_path: Path
) -> None:
    await prepare(pg_database_url)
    argv = [sys.executable, "-m", "engine.cli.main", "serve", "--store", pg_database_url]
    argv += ["--bus", nats_server_url, "--role", "worker", "--workers", "2", "--lease-ttl", "2"]
    log = (tmp_path / "serve.log").open("wb")
    env = {**os.environ, **SECRETS}
    serve = subprocess.Popen([*argv, "--no-plugins"], cwd=ROOT, env=env, stdout=log, stderr=log)
    try:
        await wait_for(lambda: all_owned(pg_database_url, owners=2), 90, "two workers own all")
        shown = await invoke_cli("workers", "--store", pg_database_url, "--json")
        report = json.loads(shown.stdout)
        assert sorted(w["partitions"] for w in report["workers"]) == [128, 128]
        assert report["unowned"] == 0
    finally:
        serve.send_signal(signal.SIGTERM)
        status = serve.wait(timeout=60)
    assert status == 0, (tmp_path / "serve.log").read_text()[-2000:]
    rows = await leases(pg_database_url)
    assert not any(row.live for row in rows), "a clean stop gives every lease back"
