"""Outbox commands carried out against a Shoplazza store.

The buyer's address reaches these commands sealed (SEC-3): it is opened here,
the one place its plaintext is needed, and only for the request body.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from adapters.shoplazza.client import ShoplazzaClient, ShoplazzaError
from engine.outbox import CommandFailed, OutboxCommand, RetryLater
from engine.vault import Vault, VaultError

Handler = Callable[[OutboxCommand], Awaitable[list[dict[str, Any]]]]


class ShoplazzaCommands:
    def __init__(self, client: ShoplazzaClient, vault: Vault) -> None:
        self.client = client
        self.vault = vault

    def handlers(self) -> dict[str, Handler]:
        return {
            "create_shoplazza_order": self.create_order,
            "update_shoplazza_payment": self.update_payment,
            "update_shoplazza_fulfillment": self.update_fulfillment,
            "update_shoplazza_address": self.update_address,
            "cancel_shoplazza_order": self.cancel_order,
        }

    async def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            return await self.client.call(method, path, **kwargs)
        except ShoplazzaError as error:
            if error.retryable:
                raise RetryLater(str(error)) from error
            raise

    def _address(self, order: str, sealed: Any) -> Any:
        """The buyer's address in clear; None once erased. A key that is missing
        (a lost keys file) will not come back by waiting: parked for an operator."""
        try:
            return self.vault.open_or_none(order, sealed)
        except VaultError as error:
            raise CommandFailed(f"the buyer's address cannot be opened: {error}") from None

    async def create_order(self, command: OutboxCommand) -> list[dict[str, Any]]:
        """Create the order once: Shoplazza has no idempotency key, so look for an
        order already tagged with this TikTok order before creating one."""
        p = command.payload
        tag = f"tiktok_order:{p['order_id']}"
        found = (await self._call("GET", "/orders", params={"tag": tag})).get("orders", [])
        if found:
            order = found[0]
        else:
            body = {
                "order": {
                    "source_name": p["source_name"],
                    "sales_platform": p["source_name"],
                    "tags": ",".join(p["tags"]),
                    "financial_status": p["financial_status"],
                    "line_items": [
                        {
                            "product_id": i["product_id"],
                            "variant_id": i["variant_id"],
                            "quantity": i["quantity"],
                            "price": i["price"],
                        }
                        for i in p["line_items"]
                    ],
                    "note_attributes": [
                        {"name": "tiktok_create_time", "value": str(p["tiktok_create_time"])},
                        {"name": "tiktok_order_id", "value": p["order_id"]},
                    ],
                    # None once the buyer's data was erased: the copy goes without it.
                    "shipping_address": self._address(p["order"], p.get("recipient_address")),
                }
            }
            order = (await self._call("POST", "/orders", body=body))["order"]
        return [
            {
                "event_id": f"result:{command.idempotency_key}",
                "type": "order.shoplazza_created",
                "source": "shoplazza",
                "entity": p["order"],
                "payload": {
                    "shoplazza_order_id": str(order["id"]),
                    "created_at": order["created_at"],
                    "status": order.get("status"),
                    "financial_status": order.get("financial_status"),
                    "fulfillment_status": order.get("fulfillment_status"),
                    "line_items": [
                        {"id": str(i["id"]), "variant_id": _text(i.get("variant_id"))}
                        for i in order.get("line_items", [])
                        if i.get("id") is not None
                    ],
                },
            }
        ]

    async def update_payment(self, command: OutboxCommand) -> list[dict[str, Any]]:
        p = command.payload
        if p["financial_status"] == "paid":
            await self._call("POST", f"/orders/{p['shoplazza_order_id']}/payment/success")
        return []

    async def update_fulfillment(self, command: OutboxCommand) -> list[dict[str, Any]]:
        p = command.payload
        await self._call(
            "PUT",
            f"/orders/{p['shoplazza_order_id']}",
            body={"order": {"fulfillment_status": p["fulfillment_status"]}},
        )
        return []

    async def update_address(self, command: OutboxCommand) -> list[dict[str, Any]]:
        p = command.payload
        address = self._address(p["order"], p["recipient_address"])
        if address is None:
            return []  # erased since it was asked for: nothing left to send
        await self._call(
            "PUT",
            f"/orders/{p['shoplazza_order_id']}",
            body={"order": {"shipping_address": address}},
        )
        return []

    async def cancel_order(self, command: OutboxCommand) -> list[dict[str, Any]]:
        await self._call("POST", f"/orders/{command.payload['shoplazza_order_id']}/cancel")
        return []


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
