"""What the inspector shows of personal data (docs/personal-data.md, SEC-3).

By default a page shows what `channelsync history` shows: sealed values as
"[sealed]" (or "[erased]" once the entity's chart recorded the erasure), and a
dead letter's raw input with personal keys redacted (done when it was kept)
and anything shaped like an email, a phone number or a token masked
(`engine.scrub.mask`). With ``show_pii`` (``channelsync inspect --show-pii``,
for the operator of the database, who holds its keys file) sealed values are
opened with the keys beside the database and raw input is shown as kept.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from engine.scrub import mask
from engine.vault import ERASED, SEALED, PersonalDataErased, Vault, VaultError, is_sealed


class Presenter:
    def __init__(self, *, show_pii: bool, vault: Vault | None) -> None:
        self.show_pii = show_pii
        self.vault = vault if show_pii else None

    def value(self, entity: str, value: Any, *, erased: bool = False) -> Any:
        """``value`` (a payload, an entity's data) as a person may see it."""
        if is_sealed(value):
            return self._opened(entity, value, erased)
        if isinstance(value, Mapping):
            return {k: self.value(entity, v, erased=erased) for k, v in value.items()}
        if isinstance(value, list):
            return [self.value(entity, v, erased=erased) for v in value]
        return value

    def _opened(self, entity: str, box: Any, erased: bool) -> Any:
        if self.vault is None:
            return ERASED if erased else SEALED
        try:
            return self.vault.open(entity, box)
        except PersonalDataErased:
            return ERASED
        except VaultError:
            return SEALED

    def raw(self, text: str) -> str:
        """A dead letter's raw input: masked unless ``show_pii``."""
        return text if self.show_pii else mask(text)

    def text(self, text: str | None) -> str | None:
        """A reason or an error message (it may quote a platform's words)."""
        if text is None or self.show_pii:
            return text
        return mask(text)


def erased(data: Mapping[str, Any] | None) -> bool:
    """Whether the entity's chart recorded the erasure of its personal data."""
    personal = (data or {}).get("personal_data") or {}
    return isinstance(personal, Mapping) and personal.get("status") == "erased"


def as_json(value: Any) -> str:
    """Pretty JSON for a page (non-JSON values as their text)."""
    return json.dumps(value, indent=2, sort_keys=True, default=str, ensure_ascii=False)


__all__ = ["Presenter", "as_json", "erased"]
