"""What an operator sees of the outbox and does about stuck work.

`OutboxCommands` (``engine.commands``) lists commands with their status and
the reason they wait, and acts on one command by id: ``retry`` puts it back
in the queue, due now, with the same idempotency key (a repeat the platform
can recognise); ``discard`` makes sure it never runs. Each action is recorded
in ``outbox_actions`` (who, why, when, and the status, attempts and error the
command had), in the same transaction as the change it describes.

Statuses are described in `engine.store.commands`.

``failed`` is a filter, not a stored status: the commands whose last attempt
failed and that have not succeeded since (parked, or pending a retry).
``running`` is shown, not stored: a pending command that a dispatcher has
claimed and whose lease has not run out (ENG-10). Its call is under way: a
retry is refused (it would change nothing but the record); a discard is
recorded at once and the call in flight finishes (done if it succeeded).
"""

from __future__ import annotations

from engine.clock import Clock
from engine.logs import get_logger
from engine.store.commands import (
    DISCARDABLE,
    FILTERS,
    OPEN,
    RETRYABLE,
    STATUSES,
    ActionOutcome,
    CommandAction,
    CommandView,
)
from engine.store.protocol import Store

log = get_logger("channelsync.outbox")

# Command ids are SQLite integers: nothing outside this range can name one.
_ID_RANGE = range(-(2**63), 2**63)


def _checked(command_id: int) -> int:
    if command_id not in _ID_RANGE:
        raise CommandNotFound(command_id)
    return command_id


class CommandNotFound(LookupError):
    """No command has this id."""

    def __init__(self, command_id: int) -> None:
        super().__init__(f"no outbox command with id {command_id}")
        self.command_id = command_id


class CommandActionRefused(ValueError):
    """The command's status does not allow the action (a done command is not run twice)."""

    def __init__(self, command_id: int, action: str, status: str) -> None:
        why = {
            "done": "it was carried out already; running it again would repeat it",
            "discarded": "it was discarded, and a discarded command never runs",
            "inert": (
                "it was ingested from another database's log; that database carried it out"
                " (or not), so this one never does"
            ),
            "running": (
                "it is running now; wait for its call to finish (or, if its process died,"
                " for its claim to expire)"
            ),
        }.get(status, f"it is {status}")
        super().__init__(f"cannot {action} command {command_id}: {why}")
        self.command_id = command_id
        self.action = action
        self.status = status


class UnknownStatusFilter(ValueError):
    def __init__(self, value: str) -> None:
        super().__init__(f"unknown status {value!r}: use one of {', '.join(FILTERS)}")
        self.value = value


def status_filter(status: str | None) -> str:
    """A status filter as given (case-insensitive; None means every open
    command), checked against `FILTERS`."""
    wanted = (status or "open").strip().lower()
    if wanted not in FILTERS:
        raise UnknownStatusFilter(status or "")
    return wanted


class OutboxCommands:
    """The operator's handle on the outbox (``engine.commands``)."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    async def list(
        self, status: str | None = None, *, entity: str | None = None
    ) -> list[CommandView]:
        """Commands by id; ``status`` is one of `FILTERS` (default: the open ones,
        pending, held and parked)."""
        return await self.store.command_views(
            status_filter(status), self.clock.now(), entity=entity
        )

    async def get(self, command_id: int) -> CommandView:
        view = await self.store.command_view(_checked(command_id), self.clock.now())
        if view is None:
            raise CommandNotFound(command_id)
        return view

    async def retry(
        self, command_id: int, *, actor: str = "api", reason: str | None = None
    ) -> CommandView:
        """Run the command again, now, with its own idempotency key. A parked
        command gets a fresh budget of attempts; a held one is released (and is
        held again if what it waits for has not changed); a pending one stops
        waiting out its backoff. Done, discarded and inert commands are refused."""
        before = await self.store.retry_command(
            _checked(command_id), now=self.clock.now(), actor=actor, reason=reason
        )
        self._logged(command_id, "retry", before, actor)
        return await self.get(command_id)

    async def discard(
        self, command_id: int, reason: str | None = None, *, actor: str = "api"
    ) -> CommandView:
        """Make sure the command never runs. A call already under way when it is
        discarded finishes, and shows done if it succeeded."""
        before = await self.store.discard_command(
            _checked(command_id), now=self.clock.now(), actor=actor, reason=reason
        )
        self._logged(command_id, "discard", before, actor)
        return await self.get(command_id)

    def _logged(self, command_id: int, action: str, before: ActionOutcome, actor: str) -> None:
        outcome, status, entity = before
        if outcome == "missing":
            raise CommandNotFound(command_id)
        if outcome == "refused":
            raise CommandActionRefused(command_id, action, status or "unknown")
        # The operator's reason is free text: it stays in the database, not the log.
        log.info(f"command {action}", command_id=command_id, entity=entity, actor=actor, was=status)


__all__ = [
    "DISCARDABLE",
    "FILTERS",
    "OPEN",
    "RETRYABLE",
    "STATUSES",
    "CommandAction",
    "CommandActionRefused",
    "CommandNotFound",
    "CommandView",
    "OutboxCommands",
    "UnknownStatusFilter",
    "status_filter",
]
