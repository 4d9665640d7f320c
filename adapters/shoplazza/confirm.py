"""Confirm a destructive Shoplazza webhook with Shoplazza's API before it acts (PLAT-9).

Neither the topic header nor the shop-domain header of a Shoplazza webhook is
signed, so a body signed for one topic can be replayed under another. The
charts therefore treat products/delete and app/uninstalled as *reports*: they
ask for one of these commands, and only its result event makes the
destructive transition. The facts asked for:

- a deleted product answers 404 on ``GET /products/{id}``;
- after an uninstall the store's access token is revoked: any call answers 401.

Anything else the API answers (the product is there, the token still works)
refuses the report, and the refusal is recorded on the entity. A rate limit
or a 5xx is tried again later (the outbox's backoff, the client's limiter);
any other answer parks the command with the reason, for an operator.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from adapters.ids import InvalidId, shoplazza_id
from adapters.shoplazza.client import ShoplazzaClient, ShoplazzaError
from engine.outbox import CommandFailed, OutboxCommand, RetryLater

Handler = Callable[[OutboxCommand], Awaitable[list[dict[str, Any]]]]
CONFIRM_DELETED = "confirm_shoplazza_product_deleted"
CONFIRM_UNINSTALLED = "confirm_shoplazza_uninstalled"
REVOKED = (401, 403)


class ShoplazzaConfirmations:
    def __init__(self, client: ShoplazzaClient) -> None:
        self.client = client

    def handlers(self) -> dict[str, Handler]:
        return {CONFIRM_DELETED: self.product_deleted, CONFIRM_UNINSTALLED: self.uninstalled}

    async def product_deleted(self, command: OutboxCommand) -> list[dict[str, Any]]:
        listing = command.payload["listing"]
        try:
            product_id = shoplazza_id(command.payload.get("product_id"), "product id")
            await self.client.call("GET", f"/products/{product_id}")
        except InvalidId as error:
            raise CommandFailed(f"cannot confirm the deletion: {error}") from None
        except ShoplazzaError as error:
            if error.status == 404:
                return [_result(command, "listing.product_removed", listing, {"reason": "deleted"})]
            _unconfirmed(error, "the deletion")
        return [
            _result(
                command,
                "connection.deletion_refused",
                command.payload["connection"],
                {
                    "listing": listing,
                    "reason": "deletion reported but the product still exists in Shoplazza",
                },
            )
        ]

    async def uninstalled(self, command: OutboxCommand) -> list[dict[str, Any]]:
        shop = command.payload["connection"]
        try:
            await self.client.shop()
        except ShoplazzaError as error:
            if error.status in REVOKED:
                return [
                    _result(
                        command,
                        "connection.app_uninstalled",
                        shop,
                        {"reason": f"Shoplazza refuses the store's access token ({error.status})"},
                    )
                ]
            _unconfirmed(error, "the uninstall")
        return [
            _result(
                command,
                "connection.uninstall_refused",
                shop,
                {"reason": "uninstall reported but the store's access token still works"},
            )
        ]


def _unconfirmed(error: ShoplazzaError, what: str) -> None:
    if error.retryable:
        raise RetryLater(f"cannot confirm {what} yet: Shoplazza answered {error.status}") from error
    raise CommandFailed(f"cannot confirm {what}: Shoplazza answered {error.status}") from error


def _result(
    command: OutboxCommand, type_: str, entity: str, payload: dict[str, Any]
) -> dict[str, Any]:
    return {
        "event_id": f"result:{command.idempotency_key}",
        "type": type_,
        "source": "shoplazza-confirm",
        "entity": entity,
        "payload": payload,
    }
