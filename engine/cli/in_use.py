"""How the command line answers when another process writes to the database (ENG-10).

Commands that write through an engine (`serve`, `ingest`, `products set`,
`shop disconnect`, `demo`) take the database's lock (`engine.store.lock`).
When it is taken they stop with one line naming the holder and exit 1, no
traceback. A merchant's command waits a little first (`MERCHANT_WAIT`): two
commands started together from a script then both go through, one after the
other, while a running `serve` (which keeps the lock) still refuses them
quickly.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from engine.store.errors import DatabaseInUse

# Seconds a merchant's command waits for the lock before it gives up.
MERCHANT_WAIT = 3.0


@contextlib.contextmanager
def refused_when_in_use() -> Iterator[None]:
    """Turn `DatabaseInUse` into the CLI's one-line error and exit code 1."""
    try:
        yield
    except DatabaseInUse as busy:
        from engine.cli.common import fail

        raise fail(str(busy)) from None
