"""What a platform adapter is, as far as the receiver and the engine care.

An *inbound* adapter verifies a delivery and turns it into engine events; an
*outbound* adapter carries out outbox commands and returns result events
(`engine.outbox.CommandHandler`). The engine knows only the latter's shape;
the receiver routes ``POST /webhooks/{name}`` to the inbound adapter of that
name. A new platform is a new pair of these, with no change to engine/.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from engine.outbox import CommandHandler


class InboundRejected(Exception):
    """A delivery that verified but is not a usable webhook (kept as a dead letter)."""


class InboundAdapter(Protocol):
    name: str

    def verify(self, body: bytes, headers: Mapping[str, str]) -> bool:
        """Is this delivery signed by the platform? Checked before anything else."""
        ...

    async def translate(self, body: bytes, headers: Mapping[str, str]) -> list[dict[str, Any]]:
        """The events a verified delivery stands for; `InboundRejected` if none can be made."""
        ...


class OutboundAdapter(Protocol):
    def handlers(self) -> dict[str, CommandHandler]:
        """Command type -> the coroutine that carries it out."""
        ...
