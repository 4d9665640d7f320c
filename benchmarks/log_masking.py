"""What the log masking (SEC-2) costs per line: `python -m benchmarks.log_masking`.

Renders the same INFO line (the outbox's "command done", six fields) through
`engine.logs`' full pipeline into a sink that drops it, with the masking
processor and with it replaced by a no-op, in alternating rounds; prints the
fastest round's CPU microseconds per line of each (CPU time and the fastest
round: the least disturbed by other work on a shared machine), and the
processor's own cost on the same line. Two
cases: the entity keys of the lines repeat (a busy entity: the mask's cache
answers) or are all new (no cache hit).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import MutableMapping
from typing import Any

import structlog

from engine import logs


class _Drop:
    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


def _no_masking(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    return event_dict


def _per_line(masking: bool, lines: int, distinct: int) -> float:
    real = logs.mask_sensitive_text
    if not masking:
        logs.mask_sensitive_text = _no_masking  # type: ignore[assignment]
    try:
        logs.configure_logging("INFO", json=True, stream=_Drop())
    finally:
        logs.mask_sensitive_text = real
    log = structlog.get_logger("bench")
    start = time.process_time()
    for i in range(lines):
        entity = f"order:57648631694849{i % distinct:06d}"
        log.info(
            "command done",
            entity=entity,
            command="fetch_order_detail",
            command_id=i,
            idempotency_key=f"{entity}:create:1",
            attempts=1,
        )
    return (time.process_time() - start) / lines * 1e6


def _processor_alone(lines: int, distinct: int) -> float:
    start = time.process_time()
    for i in range(lines):
        entity = f"order:57648631694849{i % distinct:06d}"
        logs.mask_sensitive_text(
            None,
            "info",
            {
                "entity": entity,
                "command": "fetch_order_detail",
                "command_id": i,
                "idempotency_key": f"{entity}:create:1",
                "attempts": 1,
                "event": "command done",
                "level": "info",
                "timestamp": "2026-11-29T20:52:52.123456Z",
            },
        )
    return (time.process_time() - start) / lines * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lines", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    for label, distinct in (("repeated keys", 100), ("new keys", args.lines)):
        plain, masked = [], []
        for _ in range(args.rounds):
            plain.append(_per_line(False, args.lines, distinct))
            masked.append(_per_line(True, args.lines, distinct))
        alone = min(_processor_alone(args.lines, distinct) for _ in range(args.rounds))
        without, with_ = min(plain), min(masked)
        print(
            f"{label:>14}: {without:.1f} us/line without masking, {with_:.1f} with;"
            f" the processor alone {alone:.1f} us/line"
        )
    logs.configure_logging("WARNING")


if __name__ == "__main__":
    main()
