"""Platform ids, checked by their format before they name anything (SEC-5).

A webhook or a pulled record names the entity an event goes to
(``order:<TikTok order id>``, ``listing:<store>:<Shoplazza product id>``). An
id is accepted only in the form its platform issues it; anything else raises
`InvalidId` with a reason that describes the value's type and length, never
the value itself (a body is not logged). The inbound adapters turn that into
`adapters.base.InboundRejected`, so the delivery becomes a dead letter with
the reason and no entity or command is made. docs/webhook-trust.md lists the
patterns.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic_core import to_json

from engine.logs import get_logger

log = get_logger("channelsync.ids")

TIKTOK_ID_DIGITS = 32
SHOPLAZZA_ID_LENGTH = 64
STORE_DOMAIN_SUFFIX = ".myshoplaza.com"

# Shoplazza issues ids as strings: UUIDs for its own objects, plain or dashed
# alphanumerics for others (the sandbox's "1001", "1001-1", "30001-f1").
_SHOPLAZZA_ID = re.compile(rf"[A-Za-z0-9][A-Za-z0-9_-]{{0,{SHOPLAZZA_ID_LENGTH - 1}}}")
# A store's name is the first label of its domain: a DNS label.
_STORE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


class InvalidId(ValueError):
    """A value that is not an id of the platform it claims to come from. Its
    reason names the field, the value's type and length, never the value."""

    quotes_no_input = True  # kept as the dead letter's reason and logged (SEC-2)

    def __init__(self, reason: str) -> None:
        super().__init__(f"invalid id: {reason}")
        self.reason = reason


def describe(value: Any) -> str:
    """What a refused value was, without its content: its type and size."""
    if isinstance(value, str | bytes | list | dict):
        return f"{type(value).__name__} of length {len(value)}"
    return type(value).__name__


def tiktok_id(value: Any, what: str = "TikTok id") -> str:
    """A TikTok id as exact text: ASCII digits, 1 to 32 of them, no leading zero.

    TikTok ids are large integers (PLAT-6), sent as JSON strings or numbers.
    A number is taken as its decimal text; a float (its digits are not
    trustworthy), a boolean, null, a negative number or text with anything but
    digits is refused. A leading zero would make a second name for the same
    number, so ``"0123"`` is refused too (``"0"`` alone is a valid id)."""
    if isinstance(value, bool) or value is None:
        raise InvalidId(f"{what} is {describe(value)}, not a digit string")
    if isinstance(value, float):
        raise InvalidId(f"{what} arrived as a float; its digits cannot be trusted")
    if isinstance(value, int):
        if value < 0:
            raise InvalidId(f"{what} is a negative number")
        value = str(value)
    if not isinstance(value, str):
        raise InvalidId(f"{what} is {describe(value)}, not a digit string")
    if not (0 < len(value) <= TIKTOK_ID_DIGITS and value.isascii() and value.isdigit()):
        raise InvalidId(f"{what} is not 1 to {TIKTOK_ID_DIGITS} ASCII digits ({describe(value)})")
    if len(value) > 1 and value[0] == "0":
        raise InvalidId(f"{what} has a leading zero")
    return value


def shoplazza_id(value: Any, what: str = "Shoplazza id") -> str:
    """A Shoplazza id as text: 1 to 64 ASCII letters, digits, '-' or '_',
    starting with a letter or digit. A JSON integer is taken as its decimal
    text; floats, booleans, null and anything else are refused."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        value = str(value)
    if not isinstance(value, str):
        raise InvalidId(f"{what} is {describe(value)}, not a string id")
    if not _SHOPLAZZA_ID.fullmatch(value):
        raise InvalidId(
            f"{what} is not 1 to {SHOPLAZZA_ID_LENGTH} letters, digits, '-' or '_' "
            f"({describe(value)})"
        )
    return value


def store_name(shop_domain: Any) -> str:
    """``demo-store.myshoplaza.com`` -> ``demo-store``. DNS names ignore case,
    so the domain is compared in lower case; anything but a single DNS label
    followed by ``.myshoplaza.com`` is refused."""
    if not isinstance(shop_domain, str):
        raise InvalidId(f"shop domain is {describe(shop_domain)}, not text")
    domain = shop_domain.lower()
    if not domain.endswith(STORE_DOMAIN_SUFFIX):
        raise InvalidId(f"shop domain is not <store>{STORE_DOMAIN_SUFFIX}")
    store = domain[: -len(STORE_DOMAIN_SUFFIX)]
    if not _STORE.fullmatch(store):
        raise InvalidId(f"shop domain's store name is not a DNS label ({describe(store)})")
    return store


DeadLetter = Callable[[bytes, str, str], Awaitable[Any]]


async def refuse_pulled(
    dead_letter: DeadLetter | None, record: Any, source: str, error: InvalidId
) -> None:
    """A record a scheduled pull read whose id is not the platform's: kept as a
    dead letter with the reason (when the pull has somewhere to keep it), and
    never published, so it makes no entity and no command."""
    log.warning("pulled record refused", source=source, reason=error.reason)
    if dead_letter is not None:
        await dead_letter(to_json(record), source, f"InvalidId: {error.reason}")
