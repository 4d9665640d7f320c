"""`EngineSettings`: every knob of a running engine, typed and checked once.

    engine = await Engine.open("sync.db", [charts], settings=EngineSettings(partitions=8))

A wrong value fails when the settings are made, with a `ValueError` naming
the field, not later inside a loop or a child process.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

# Seconds a dead letter is kept after it was last seen (30 days); engine.dead_letters
# purges them.
# Defined here so that the settings import nothing heavy (the command line builds them).
RETENTION = 30 * 86400.0

SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")
WRITERS = ("thread", "process")


@dataclass(frozen=True)
class EngineSettings:
    """How an engine runs. Defaults suit a service; tests that drive time with a
    `FakeClock` turn ``run_timers`` and ``run_outbox`` off and fire timers and
    the outbox themselves."""

    # The bus: entity partitions (each applies its entities' events in order),
    # events queued before `submit` waits, events per committed batch, entities
    # kept in memory, and batches in flight between the partitions and the store.
    partitions: int = 4
    queue_size: int = 10_000
    max_batch: int = 1_000
    cache_size: int = 200_000
    pending_batches: int = 64
    # Seconds between rounds of the timer loop and of the outbox loop, and how
    # long a claimed command stays claimed before another process may take it.
    timer_interval: float = 0.25
    outbox_interval: float = 0.1
    outbox_lease: float = 60.0
    # Dead letters last seen longer ago than this are purged, every purge_interval.
    dead_letter_retention: float = RETENTION
    purge_interval: float = 3600.0
    # SQLite's `PRAGMA synchronous`, and where its writes run: a thread, or a
    # child process (faster under load on more than one core, ~0.5 s to start:
    # it imports the store's modules before its first commit).
    synchronous: str = "FULL"
    writer: str = "thread"
    run_timers: bool = True
    run_outbox: bool = True
    # A reason: every command the charts ask for is recorded as inert, never
    # carried out (a database that only re-applies another one's log).
    inert_commands: str | None = None
    # One process writes to a database at a time (ENG-10); ``lock=False`` is for
    # tests that need two engines on one file.
    lock: bool = True
    lock_wait: float = 0.0

    def __post_init__(self) -> None:
        for name in ("partitions", "queue_size", "max_batch", "cache_size", "pending_batches"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(
                    f"EngineSettings.{name} must be a whole number >= 1, not {value!r}"
                )
        for name in (
            "timer_interval",
            "outbox_interval",
            "outbox_lease",
            "dead_letter_retention",
            "purge_interval",
        ):
            _positive(name, getattr(self, name))
        if not isinstance(self.lock_wait, int | float) or self.lock_wait < 0:
            raise ValueError(f"EngineSettings.lock_wait must be >= 0, not {self.lock_wait!r}")
        if self.synchronous not in SYNCHRONOUS:
            raise ValueError(
                f"EngineSettings.synchronous must be one of {', '.join(SYNCHRONOUS)},"
                f" not {self.synchronous!r}"
            )
        if self.writer not in WRITERS:
            raise ValueError(
                f"EngineSettings.writer must be 'thread' or 'process', not {self.writer!r}"
            )
        if self.inert_commands is not None and not self.inert_commands.strip():
            raise ValueError("EngineSettings.inert_commands must be a reason, not blank")


def _positive(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"EngineSettings.{name} must be a number > 0, not {value!r}")


FIELD_NAMES = frozenset(field.name for field in fields(EngineSettings))
