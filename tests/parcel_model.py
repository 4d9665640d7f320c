"""An independent, hand-written model of the sample parcel chart.

Tests compare the engine against this plain-Python model, so a bug in the
chart compiler or the step cannot hide behind itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

FINAL = {"delivered", "cancelled"}


@dataclass
class ParcelModel:
    state: str = "created"
    data: dict[str, Any] = field(default_factory=dict)
    version: int = 0

    def apply(self, event_type: str, payload: dict[str, Any]) -> bool:
        """Apply one event; True if it changed the parcel."""
        s = self.state
        if s in FINAL:
            return False
        if event_type == "parcel.pack" and s == "created":
            self.data["weight_kg"] = float(payload.get("weight_kg", 0.0))
            return self._go("packed")
        if event_type == "parcel.ship" and s in ("packed", "overdue"):
            if not payload.get("tracking_number"):
                return False
            self.data["tracking_number"] = payload["tracking_number"]
            return self._go("shipped")
        if event_type == "parcel.deliver" and s == "shipped":
            return self._go("delivered")
        if event_type == "parcel.cancel" and s in ("created", "packed", "overdue"):
            return self._go("cancelled")
        if event_type == "parcel.note":
            self.data.setdefault("notes", []).append(payload["text"])
            return self._go(s)
        if event_type == "parcel.ship_deadline" and s == "packed":
            return self._go("overdue")
        return False

    def _go(self, state: str) -> bool:
        self.state = state
        self.version += 1
        return True


EVENT_TYPES = ["parcel.pack", "parcel.ship", "parcel.deliver", "parcel.cancel", "parcel.note"]


def payload_for(event_type: str, n: int) -> dict[str, Any]:
    if event_type == "parcel.pack":
        return {"weight_kg": (n % 50) / 10}
    if event_type == "parcel.ship":
        return {"tracking_number": f"TRK{n}"} if n % 4 else {}
    if event_type == "parcel.note":
        return {"text": f"note {n}"}
    return {}
