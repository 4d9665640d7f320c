"""The inspector inside a running engine's HTTP server (``serve --inspector``).

Mounted under /inspector of the receiver, it needs a token
(`engine.inspector.security`): ``CHANNELSYNC_INSPECTOR_TOKEN`` when set, else
a random one written to ``<db>.inspector-token`` (owner-only, 0600) at start
(for a PostgreSQL database, beside its vault's keys file).
Neither is printed nor logged: the operator reads the file, or sets the
variable, and opens ``/inspector/?token=...`` once (the browser keeps it).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from engine.inspector.app import build_inspector
from engine.inspector.backend import Attached
from engine.inspector.present import Presenter
from engine.inspector.security import new_token
from engine.store.urls import vault_path
from engine.vault import KEYS_SUFFIX

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from engine.runtime import Engine

PREFIX = "/inspector"
TOKEN_VARIABLE = "CHANNELSYNC_INSPECTOR_TOKEN"


def token_file(db: str | Path) -> Path:
    """``<db>.inspector-token`` beside a SQLite file; for a PostgreSQL URL,
    beside the vault's keys file of that database (engine.store.urls)."""
    if "://" in str(db):
        keys = vault_path(db)
        return Path(keys.removesuffix(KEYS_SUFFIX) + ".inspector-token")
    return Path(f"{db}.inspector-token")


def inspector_token(
    db: str | Path, env: Mapping[str, str] | None = None
) -> tuple[str, Path | None]:
    """The token, and the file it was written to (None when it came from the environment)."""
    given = (env if env is not None else os.environ).get(TOKEN_VARIABLE, "").strip()
    if given:
        return given, None
    token = new_token()
    path = token_file(db)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Owner-only from the moment it exists; a token left by a previous run is replaced.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, token.encode() + b"\n")
    finally:
        os.close(fd)
    return token, path


def mount_inspector(app: Starlette, engine: Engine, token: str) -> Starlette:
    """Mount the inspector of ``engine`` under /inspector of ``app``; the
    inspector's own app (`close_inspector` it before stopping the server)."""
    inspector = build_inspector(
        Attached(engine, Presenter(show_pii=False, vault=None)),
        token=token,
        cookie_path=PREFIX,
    )
    app.mount(PREFIX, inspector)
    return inspector


__all__ = ["PREFIX", "TOKEN_VARIABLE", "inspector_token", "mount_inspector", "token_file"]
