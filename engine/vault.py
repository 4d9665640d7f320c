"""Buyer personal data sealed per entity, with its keys kept apart from the log (SEC-3).

A payload field annotated with `PERSONAL` is sealed before its event is
written: AES-GCM under a key of its own entity (one key per order), with the
entity and field name as associated data, so a sealed value cannot be moved to
another order or field. The sealed value is a small JSON object
(`{"sealed": "v1", "field", "nonce", "data"}`) that the charts copy around but
never look into, so their steps stay pure and replay gives the same result
whether or not the key still exists.

The keys live in a separate SQLite file beside the database (``<db>.keys``),
with ``secure_delete`` on. Erasing an entity deletes its key (its bytes are
overwritten in the file) and keeps a tombstone (when, why, who: no personal
data); personal fields that arrive for an erased entity afterwards are dropped
before the write. See docs/personal-data.md.
"""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import BaseModel

if TYPE_CHECKING:
    from engine.events import Event

SEALED_VERSION = "v1"
ERASED = "[erased]"
SEALED = "[sealed]"
REDACTED = "[redacted]"
KEYS_SUFFIX = ".keys"

# Keys that hold a person's data wherever they appear in a platform body: what a
# dead letter or a redacted export must not carry even when nothing sealed them
# (a body refused before it became an event, a log written before sealing).
PERSONAL_KEYS = frozenset(
    {
        "recipient_address",
        "buyer_email",
        "buyer_message",
        "buyer_nickname",
        "cpf",
        "cpf_name",
        "shipping_address",
        "billing_address",
        "customer",
        "email",
        "phone",
        "phone_number",
        "first_name",
        "last_name",
        "full_address",
    }
)


@dataclass(frozen=True)
class PersonalField:
    """Marks a payload field as a buyer's personal data: `Annotated[T, PERSONAL]`.
    Its type must also admit a dict (the sealed value)."""


PERSONAL = PersonalField()


class VaultError(Exception):
    """A sealed value that cannot be opened: no key, a wrong key, a damaged value."""


class PersonalDataErased(VaultError):
    """The entity's key was destroyed: its personal data is gone for good."""


@cache
def personal_fields(model: type[BaseModel]) -> tuple[str, ...]:
    """The names of ``model``'s fields marked `PERSONAL`."""
    return tuple(
        name
        for name, info in model.model_fields.items()
        if any(isinstance(item, PersonalField) for item in info.metadata)
    )


def is_sealed(value: Any) -> bool:
    return (
        isinstance(value, Mapping)
        and value.get("sealed") == SEALED_VERSION
        and isinstance(value.get("data"), str)
    )


def _aad(entity: str, field: str) -> bytes:
    return f"{entity}\x00{field}".encode()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class Vault:
    """The per-entity keys, in their own SQLite file (``:memory:`` for tests).

    Calls are synchronous and short (one small indexed row); they happen only
    for events that carry personal fields, and for erasure."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        # Opened on first use: a database that never sees personal data has no
        # keys file, and opening an engine costs nothing more.
        self._conn: sqlite3.Connection | None = None

    @property
    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = self._connect(self.path)
        return self._conn

    @staticmethod
    def _connect(path: str) -> sqlite3.Connection:
        if path != ":memory:" and not Path(path).exists():
            # Owner-only from the start: the file is what makes the log readable.
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        # secure_delete overwrites a deleted key's bytes in the file; erase()
        # truncates the WAL after a checkpoint so no old frame still holds one.
        # FULL: a key is on disk before the event sealed with it is written.
        for pragma in (
            "PRAGMA secure_delete=ON",
            "PRAGMA journal_mode=WAL",
            "PRAGMA synchronous=FULL",
            "PRAGMA busy_timeout=5000",
        ):
            db.execute(pragma)
        db.executescript(
            "CREATE TABLE IF NOT EXISTS entity_keys ("
            " entity TEXT PRIMARY KEY, key BLOB NOT NULL, created_at REAL NOT NULL);"
            "CREATE TABLE IF NOT EXISTS erasures ("
            " entity TEXT PRIMARY KEY, erased_at REAL NOT NULL, reason TEXT NOT NULL,"
            " requested_by TEXT NOT NULL);"
        )
        return db

    @classmethod
    def beside(cls, db_path: str | Path) -> Vault:
        """The vault of the database at ``db_path``: ``<db>.keys``."""
        text = str(db_path)
        return cls(":memory:" if text == ":memory:" else text + KEYS_SUFFIX)

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # ------------------------------------------------------------ keys

    def _key(self, entity: str) -> bytes | None:
        row = self._db.execute("SELECT key FROM entity_keys WHERE entity = ?", (entity,)).fetchone()
        return None if row is None else bytes(row[0])

    def erased_at(self, entity: str) -> float | None:
        with self._lock:
            row = self._db.execute(
                "SELECT erased_at FROM erasures WHERE entity = ?", (entity,)
            ).fetchone()
        return None if row is None else float(row[0])

    def _key_or_create(self, entity: str, now: float) -> bytes | None:
        """The entity's key, made on first use; None once the entity was erased."""
        with self._lock:
            key = self._key(entity)
            if key is not None:
                return key
            erased = self._db.execute(
                "SELECT 1 FROM erasures WHERE entity = ?", (entity,)
            ).fetchone()
            if erased:
                return None
            key = AESGCM.generate_key(bit_length=256)
            self._db.execute(
                "INSERT INTO entity_keys (entity, key, created_at) VALUES (?, ?, ?)",
                (entity, key, now),
            )
            return key

    def erase(self, entity: str, *, reason: str, requested_by: str, now: float) -> bool:
        """Destroy ``entity``'s key and keep a tombstone. True if a key was destroyed
        now; False if there was none (never sealed anything, or erased before)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                destroyed = self._db.execute(
                    "DELETE FROM entity_keys WHERE entity = ?", (entity,)
                ).rowcount
                self._db.execute(
                    "INSERT OR IGNORE INTO erasures (entity, erased_at, reason, requested_by)"
                    " VALUES (?, ?, ?, ?)",
                    (entity, now, reason, requested_by),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return destroyed > 0

    # ------------------------------------------------------------ sealing

    def seal(self, entity: str, field: str, value: Any, *, now: float) -> dict[str, str] | None:
        """``value`` sealed under ``entity``'s key; None when the entity was
        erased (what arrives afterwards is dropped, never stored)."""
        key = self._key_or_create(entity, now)
        if key is None:
            return None
        plain = json.dumps(value, sort_keys=True, separators=(",", ":")).encode()
        nonce = os.urandom(12)
        data = AESGCM(key).encrypt(nonce, plain, _aad(entity, field))
        return {"sealed": SEALED_VERSION, "field": field, "nonce": _b64(nonce), "data": _b64(data)}

    def open(self, entity: str, box: Mapping[str, Any]) -> Any:
        """The plaintext of a sealed value; `PersonalDataErased` once the key is gone."""
        if not is_sealed(box):
            raise VaultError("not a sealed value")
        with self._lock:
            key = self._key(entity)
        if key is None:
            if self.erased_at(entity) is not None:
                raise PersonalDataErased(f"the personal data of {entity} was erased")
            raise VaultError(f"no key for {entity} in {self.path}")
        try:
            plain = AESGCM(key).decrypt(
                base64.b64decode(box["nonce"]),
                base64.b64decode(box["data"]),
                _aad(entity, str(box.get("field", ""))),
            )
        except (InvalidTag, ValueError, KeyError) as error:
            raise VaultError(f"a sealed value of {entity} does not open") from error
        return json.loads(plain)

    def open_or_none(self, entity: str, value: Any) -> Any:
        """For the commands that need the plaintext: a sealed value opened, a
        plain one as it is, and None for data that was erased."""
        if not is_sealed(value):
            return value
        try:
            return self.open(entity, value)
        except PersonalDataErased:
            return None

    def seal_event(self, event: Event, now: float) -> Event:
        """``event`` with its payload's personal fields sealed (those already
        sealed are kept; an erased entity's are dropped)."""
        names = personal_fields(type(event.payload))
        if not names:
            return event
        updates: dict[str, Any] = {}
        for name in names:
            value = getattr(event.payload, name, None)
            if value is None or is_sealed(value):
                continue
            if isinstance(value, BaseModel):
                value = value.model_dump(mode="json")
            updates[name] = self.seal(event.entity, name, value, now=now)
        if not updates:
            return event
        payload = event.payload.model_copy(update=updates)
        return event.model_copy(update={"payload": payload})


# ---------------------------------------------------------------- showing and redacting


def present(value: Any, *, erased: bool) -> Any:
    """``value`` for a person to read: sealed values shown as "[erased]" or "[sealed]"."""
    marker = ERASED if erased else SEALED
    if is_sealed(value):
        return marker
    if isinstance(value, dict):
        return {k: present(v, erased=erased) for k, v in value.items()}
    if isinstance(value, list):
        return [present(v, erased=erased) for v in value]
    return value


def present_entity(record: dict[str, Any], data: Mapping[str, Any] | None) -> dict[str, Any]:
    """An entity's record (its data, history, commands) for `state` and `history`:
    sealed values shown as "[erased]" once the entity's chart recorded the
    erasure (``data.personal_data.status``), else as "[sealed]"."""
    personal = (data or {}).get("personal_data") or {}
    erased = personal.get("status") == "erased"
    return {key: present(value, erased=erased) for key, value in record.items()}


def redact(value: Any) -> Any:
    """``value`` with every sealed value and every personal key's value replaced
    by "[redacted]" (`export --redact`, dead letters)."""
    if is_sealed(value):
        return REDACTED
    if isinstance(value, dict):
        return {
            k: (REDACTED if k in PERSONAL_KEYS and v is not None else redact(v))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def redact_raw(text: str) -> str:
    """A raw body (a dead letter's) with its personal keys redacted when it is
    JSON; text that is not JSON is kept as it is (nothing there is addressable)."""
    try:
        parsed = json.loads(text)
    except (ValueError, RecursionError):
        return text
    if not isinstance(parsed, dict | list):
        return text
    cleaned = redact(parsed)
    return text if cleaned == parsed else json.dumps(cleaned, separators=(",", ":"))
