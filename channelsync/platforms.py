"""The two platforms' side of the channel: what carries out its commands.

`Platforms` is what `channelsync.bootstrap` needs of them: handlers for the
commands that reach TikTok Shop or Shoplazza, built once the database is open.
`HttpPlatforms` is the real one (HTTP clients from `ChannelSettings`); the test
harness gives in-process fakes (tests/channel/harness.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from adapters.health import ObservedClient, Reachability
from adapters.shoplazza.client import ShoplazzaClient
from adapters.shoplazza.commands import ShoplazzaCommands
from adapters.shoplazza.confirm import ShoplazzaConfirmations
from adapters.tiktok_shop.client import TikTokClient
from adapters.tiktok_shop.commands import TikTokCommands
from adapters.tiktok_shop.credentials import CredentialStore
from adapters.tiktok_shop.images import ImageSource
from channelsync.settings import ChannelSettings
from engine.clock import Clock
from engine.lifecycle import EngineParts
from engine.logs import get_logger
from engine.outbox import CommandHandler

log = get_logger("channelsync.platforms")
# Seconds one call to a platform may take before it counts as failed.
CALL_TIMEOUT = 10.0


def tiktok_client(
    settings: ChannelSettings, credentials: CredentialStore, clock: Clock
) -> TikTokClient:
    """TikTok Shop's API client over HTTP, as the settings name it."""
    return TikTokClient(
        settings.tiktok_api_url,
        settings.tiktok_auth_url,
        settings.tiktok_app_key,
        settings.tiktok_app_secret,
        credentials,
        clock,
        http=ObservedClient(Reachability("tiktok"), timeout=CALL_TIMEOUT),
    )


@dataclass(frozen=True)
class PlatformHandlers:
    """``gated``: commands that act for a shop on TikTok's side, carried out
    only while the shop's TikTok authorization holds (`AuthorizationGate`).
    ``ungated``: commands that must run whatever the authorization, e.g.
    asking Shoplazza whether an uninstall happened (PLAT-9)."""

    gated: Mapping[str, CommandHandler]
    ungated: Mapping[str, CommandHandler] = field(default_factory=dict)


class Platforms(Protocol):
    async def open(self, parts: EngineParts) -> PlatformHandlers:
        """Build the handlers over the opened store and vault."""
        ...

    async def close(self) -> None:
        """Let go of what `open` opened (connections); safe to call when it did not run."""
        ...


class HttpPlatforms:
    """TikTok Shop's and Shoplazza's APIs over HTTP."""

    def __init__(
        self,
        settings: ChannelSettings,
        images: ImageSource | None = None,
        *,
        keep_unrecorded: float = 0.0,
    ) -> None:
        """``keep_unrecorded``: seconds staged OAuth tokens whose event is not
        recorded yet are kept (a cluster worker's: the event may be on the bus)."""
        self.settings = settings
        self.images = images
        self.keep_unrecorded = keep_unrecorded
        self.credentials: CredentialStore | None = None
        self.clock: Clock | None = None
        self.tiktok: TikTokClient | None = None
        self.shoplazza: ShoplazzaClient | None = None

    async def open(self, parts: EngineParts) -> PlatformHandlers:
        settings = self.settings
        credentials = self.credentials = CredentialStore(parts.store)
        self.clock = parts.clock
        # Tokens staged by a callback that a crash interrupted (CONN-7).
        await self.settle_staged()
        self.tiktok = tiktok_client(settings, credentials, parts.clock)
        self.shoplazza = ShoplazzaClient(
            settings.shoplazza_api_url,
            settings.shoplazza_access_token,
            http=ObservedClient(Reachability("shoplazza"), timeout=CALL_TIMEOUT),
            rate=settings.shoplazza_rate,
            burst=max(1, int(settings.shoplazza_rate)),
        )
        return PlatformHandlers(
            gated=TikTokCommands(self.tiktok, images=self.images).handlers()
            | ShoplazzaCommands(self.shoplazza, parts.vault).handlers(),
            # Asking Shoplazza whether a deletion or an uninstall happened needs
            # no TikTok authorization, or an uninstall reported while TikTok is
            # deauthorized would wait for a re-authorization (PLAT-9).
            ungated=ShoplazzaConfirmations(self.shoplazza).handlers(),
        )

    async def settle_staged(self) -> None:
        """Promote or discard the staged OAuth tokens whose fate is known (CONN-7)."""
        if self.credentials is None or self.clock is None:
            raise RuntimeError("the platforms are not open yet")
        promoted, discarded = await self.credentials.settle_staged(
            now=self.clock.now(), keep_unrecorded=self.keep_unrecorded
        )
        if promoted or discarded:
            log.info("staged oauth tokens settled", promoted=promoted, discarded=discarded)

    def clients(self) -> tuple[TikTokClient, ShoplazzaClient]:
        """The two clients, once `open` has built them."""
        if self.tiktok is None or self.shoplazza is None:
            raise RuntimeError("the platforms are not open yet")
        return self.tiktok, self.shoplazza

    async def close(self) -> None:
        for client in (self.tiktok, self.shoplazza):
            if client is not None:
                await client.aclose()
