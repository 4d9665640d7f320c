"""What a platform adapter is, as far as the receiver and the engine care.

An *inbound* adapter verifies a delivery and turns it into engine events; the
receiver routes ``POST /webhooks/{name}`` to the inbound adapter of that name.
The outbound side is a mapping of command type to handler
(`engine.outbox.CommandHandler`): each carries out an outbox command and
returns its result events. A new platform is one of each, with no change to
engine/.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from pydantic import ValidationError

from engine.validation_errors import describe_validation_error


class InboundRejected(Exception):
    """A delivery that verified but is not a usable webhook (kept as a dead letter).

    Its text is stored with the dead letter, shown to operators and logged:
    it names what is wrong, never the values sent (SEC-2)."""

    quotes_no_input = True


def rejection_reason(error: Exception) -> str:
    """Why a verified body could not be translated, without quoting it.

    A rejection that declares ``quotes_no_input`` is the adapter's own reason;
    a validation error is told by field and error type; anything else only by
    its type, because its text may hold the body's values (``int()`` quotes
    what it could not parse, a ``KeyError`` names a key the sender chose)."""
    if isinstance(error, ValidationError):
        return describe_validation_error(error)
    if getattr(error, "quotes_no_input", False):
        return str(error)
    return f"{type(error).__name__} while reading the body"


class InboundAdapter(Protocol):
    name: str

    def verify(self, body: bytes, headers: Mapping[str, str]) -> bool:
        """Is this delivery signed by the platform? Checked before anything else."""
        ...

    async def translate(self, body: bytes, headers: Mapping[str, str]) -> list[dict[str, Any]]:
        """The events a verified delivery stands for; `InboundRejected` if none can be made."""
        ...
