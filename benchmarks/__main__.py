"""Every benchmark, with its peers and its target: `python -m benchmarks`
(`--only step` for the pure-step figures alone, `--only cluster` for the
cluster's against one process and raw PostgreSQL: needs PostgreSQL and NATS).
It leads with events as a host receives them: JSON text per event through
`publish_raw` (benchmarks/wire.py), then the pre-built figure, and signed
webhooks through serve beside it.

Prints one table and writes benchmarks/results/summary.json. Each figure is a
median of several runs; each ratio is between figures of this same run.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

from benchmarks import peers, step

RESULTS = Path(__file__).parent / "results"


def _part(name: str, *args: str) -> dict:
    """Run ``benchmarks.<name>`` in its own process; the JSON it wrote."""
    subprocess.run(
        [sys.executable, "-m", f"benchmarks.{name}", *args], check=True, stdout=subprocess.DEVNULL
    )
    return json.loads((RESULTS / f"{name}.json").read_text())


def wire() -> dict:
    return _part("wire", "--rounds", "3")


def throughput() -> dict:
    return _part("throughput", "--runs", "5", "--latency-seconds", "3", "--latency-runs", "3")


def replay() -> dict:
    subprocess.run(
        [sys.executable, "-m", "benchmarks.replay", "--runs", "2"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return json.loads((RESULTS / "replay.json").read_text())


def webhooks() -> dict:
    return _part("webhooks", "--runs", "3")


def _cpu_rows(cpu: dict, raw_minimal: float) -> list[tuple[str, str, str, bool | None]]:
    """What an event costs each process, and the rate that bounds on this
    machine's cores: the engine's loop and its writer run side by side, so with
    every core busy no arrangement of them exceeds cores / (loop + writer)."""
    loop, writer, cores = cpu["engine_process"], cpu["writer_process"], cpu["cores"]
    if writer is None:
        return []
    bound = cores * 1e6 / (loop + writer)
    return [
        ("  CPU per event: engine / writer process", f"{loop:.1f} us / {writer:.1f} us", "", None),
        (
            f"  CPU bound on {cores} cores, all busy (events/s)",
            f"{bound:,.0f} = {bound / raw_minimal:.2f} of raw minimal",
            "",
            None,
        ),
    ]


def _wire_rows(wired: dict) -> list[tuple[str, str, str, bool | None]]:
    """The headline: JSON text per event through `publish_raw`, many calls in
    flight, against the pre-built events and raw sqlite3 + json.loads of the
    same rounds (benchmarks/wire.py)."""
    to_prebuilt, to_raw = wired["ratio_to_prebuilt"], wired["ratio_to_raw"]
    return [
        (
            "events from the wire: JSON, publish_raw (/s)",
            f"{wired['publish_raw_per_s_median']:,} ({wired['in_flight']:,} in flight)",
            "",
            None,
        ),
        (
            "  / pre-built events, same rounds",
            f"{to_prebuilt:.2f} of {wired['prebuilt_per_s_median']:,}/s",
            ">= 0.8",
            to_prebuilt >= 0.8,
        ),
        (
            "  / raw sqlite3 + json.loads, same rounds",
            f"{to_raw:.2f} of {wired['raw_json_sqlite_per_s_median']:,}/s",
            ">= 0.5",
            to_raw >= 0.5,
        ),
        (
            "  CPU per event, engine process",
            f"{wired['publish_raw_cpu_us_per_event']} us (pre-built"
            f" {wired['prebuilt_cpu_us_per_event']} us)",
            "",
            None,
        ),
    ]


def _webhook_rows(hooks: dict, wired: dict) -> list[tuple[str, str, str, bool | None]]:
    """Signed webhooks through serve, load client in its own process; the
    ratio is to the publish_raw figure of this same run."""
    ratio = hooks["per_second_median"] / wired["publish_raw_per_s_median"]
    return [
        (
            f"webhooks through serve (/s, {hooks['concurrency']} connections)",
            f"{hooks['per_second_median']:,.0f}",
            ">= 2,000",
            hooks["per_second_median"] >= 2_000,
        ),
        ("  / publish_raw, same run", f"{ratio:.2f}", ">= 0.5", ratio >= 0.5),
        (
            "  p50 / p99 acknowledge",
            f"{hooks['p50_ms']:.1f} / {hooks['p99_ms']:.1f} ms",
            "p99 <= 20 ms",
            hooks["p99_ms"] <= 20,
        ),
        ("  serve's CPU per webhook", f"{hooks.get('serve_cpu_us_per_webhook')} us", "", None),
    ]


def _step_rows(ceilings: dict) -> list[tuple[str, str, str, bool | None]]:
    """The pure step of the flat chart and of the three-region chart, measured
    alternately in this run (benchmarks/step.py), and the flat one's ceiling."""
    flat, regions = ceilings["engine_step_per_s"], ceilings["three_region_step_per_s"]
    one_move = ceilings["three_region_one_move_per_s"]
    target = step.THREE_REGION_TARGET
    return [
        ("pure step, flat chart (events/s)", f"{flat:,.0f}", "", None),
        (
            "  / raw transitions triggers",
            f"{flat / ceilings['raw_transitions_per_s']:.2f}"
            f" of {ceilings['raw_transitions_per_s']:,.0f}/s",
            "",
            None,
        ),
        (
            "pure step, three regions, one region moves",
            f"{one_move:,.0f} = {one_move / flat:.2f} of flat",
            f">= {target:,}",
            one_move >= target,
        ),
        (
            "  three regions, mix of events",
            f"{regions:,.0f} = {regions / flat:.2f} of flat",
            "",
            None,
        ),
        (
            "  per CPU second: flat / one move / mix",
            f"{ceilings['engine_step_cpu_per_s']:,.0f} / "
            f"{ceilings['three_region_one_move_cpu_per_s']:,.0f} / "
            f"{ceilings['three_region_step_cpu_per_s']:,.0f}",
            "",
            None,
        ),
    ]


def _print_table(rows: list[tuple[str, str, str, bool | None]], started: float) -> None:
    print(
        f"channelsync benchmarks, {platform.machine()}, Python {platform.python_version()}, "
        f"{time.monotonic() - started:.0f}s"
    )
    print(f"{'measure':46} {'figure':38} {'target':12} ok")
    for name, figure, target, ok in rows:
        mark = "" if ok is None else ("yes" if ok else "NO")
        print(f"{name:46} {figure:38} {target:12} {mark}")


def only_step() -> None:
    """`--only step`: the pure-step figures alone, in about a minute (the full
    run takes several); results/step.json, summary.json left as it was."""
    from engine.gc_tuning import tune_gc

    tune_gc()  # as in the full run
    started = time.monotonic()
    steps = step.alternated()
    ceilings = {
        "raw_transitions_per_s": peers.median_rate(peers.raw_transitions),
        "engine_step_per_s": steps["flat_step_per_s"],
        "three_region_one_move_per_s": steps["three_region_one_move_per_s"],
        "three_region_step_per_s": steps["three_region_step_per_s"],
        "engine_step_cpu_per_s": steps["flat_step_cpu_per_s"],
        "three_region_one_move_cpu_per_s": steps["three_region_one_move_cpu_per_s"],
        "three_region_step_cpu_per_s": steps["three_region_step_cpu_per_s"],
        "step_runs": steps["runs"],
    }
    _print_table(_step_rows(ceilings), started)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "step.json").write_text(json.dumps(ceilings, indent=2))


def _parallel_replay_row(replayed: dict) -> tuple[str, str, str, bool]:
    """Replay in every core's process against the one-process read-and-decode
    ceiling of the same run (benchmarks/replay.py)."""
    jobs, full = replayed["jobs"], replayed["replay"]["1.0"]
    rate, ceiling = full[f"parallel_{jobs}"]["events_per_s_median"], full["ceiling_1"]
    return (
        f"  in {jobs} processes / read-and-decode ceiling",
        f"{rate:,}/s = {rate / ceiling['events_per_s_median']:.2f} of"
        f" {ceiling['events_per_s_median']:,}/s",
        ">= 0.5",
        rate / ceiling["events_per_s_median"] >= 0.5,
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument(
        "--only",
        choices=["step", "cluster"],
        help="run only this part (step: the pure-step figures; cluster: benchmarks/cluster.py)",
    )
    only = parser.parse_args().only
    if only == "step":
        only_step()
        return
    if only == "cluster":
        # Its own process: it starts worker and receiver processes of its own,
        # and prints its table; results/cluster.json holds the figures.
        subprocess.run([sys.executable, "-m", "benchmarks.cluster"], check=True)
        return
    from benchmarks import scale
    from engine.gc_tuning import tune_gc

    tune_gc()  # this process runs the peers and the scale run: same settings for all
    started = time.monotonic()
    wired = wire()
    ingest = throughput()
    ceilings = peers.run()
    scaled = scale.run()
    replayed = replay()
    hooks = webhooks()
    peak = ingest["peak_events_per_s_median"]
    bulk = ingest["bulk_events_per_s_median"]
    half = ingest["latency"][1]
    full_replay = replayed["replay"]["1.0"]
    raw_minimal, raw_same = ceilings["raw_sqlite_per_s"], ceilings["raw_sqlite_engine_schema_per_s"]
    rows = [
        *_wire_rows(wired),
        ("durable ingest, pre-built, publish (events/s)", f"{peak:,}", ">= 25,000", peak >= 25_000),
        ("  bulk publish_many", f"{bulk:,}", "", None),
        ("  writer thread", f"{ingest['thread_writer_events_per_s_median']:,}", "", None),
        (
            "  writer thread, interpreter's default GC",
            f"{ingest['default_gc_events_per_s_median']:,}",
            "",
            None,
        ),
        (
            "  / raw sqlite3, the engine's schema",
            f"{peak / raw_same:.3f} of {raw_same:,.0f}/s",
            ">= 0.3",
            peak / raw_same >= 0.3,
        ),
        (
            "  / raw sqlite3, minimal 2-table schema",
            f"{peak / raw_minimal:.3f} of {raw_minimal:,.0f}/s",
            ">= 0.3",
            peak / raw_minimal >= 0.3,
        ),
        *_cpu_rows(ingest["cpu_us_per_event"], raw_minimal),
        (
            "  / eventsourcing (SQLite, 1 event per save)",
            f"{peak / ceilings['eventsourcing_per_s']:.1f}x"
            f" (bulk {bulk / ceilings['eventsourcing_per_s']:.1f}x)"
            f" of {ceilings['eventsourcing_per_s']:,.0f}/s",
            ">= 5x",
            peak / ceilings["eventsourcing_per_s"] >= 5,
        ),
        (
            "p99 publish-to-commit at 50% of peak",
            f"{half['p99_ms']} ms (runs {', '.join(str(r) for r in half['p99_ms_runs'])})",
            "< 25 ms",
            half["p99_ms"] < 25,
        ),
        *_step_rows(ceilings),
        (
            "  / python-statemachine",
            f"{ceilings['engine_step_per_s'] / ceilings['python_statemachine_per_s']:.1f}x"
            f" of {ceilings['python_statemachine_per_s']:,.0f}/s",
            "",
            None,
        ),
        (
            "replay, 1M-event log (events/s)",
            f"{full_replay['events_per_s_median']:,}",
            ">= 100,000",
            full_replay["events_per_s_median"] >= 100_000,
        ),
        _parallel_replay_row(replayed),
        (
            "  peak RSS at 250k / 1M events",
            f"{replayed['replay']['0.25']['peak_rss_mb_max']} / "
            f"{full_replay['peak_rss_mb_max']} MB",
            "bounded",
            True,
        ),
        (
            "1M entities in store vs 10k (events/s)",
            f"{scaled['rate_big']:,.0f} vs {scaled['rate_small']:,.0f} ({scaled['ratio']:.2f})",
            ">= 0.5",
            scaled["ratio"] >= 0.5,
        ),
        *_webhook_rows(hooks, wired),
    ]
    _print_table(rows, started)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "summary.json").write_text(
        json.dumps(
            {
                "wire": wired,
                "ingest": ingest,
                "peers": ceilings,
                "scale": scaled,
                "replay": replayed,
                "webhooks": hooks,
            },
            indent=2,
            default=str,
        )
    )


if __name__ == "__main__":
    main()
