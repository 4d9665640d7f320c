from __future__ import annotations

import pytest

from tests.channel.harness import Channel


@pytest.fixture
async def channel(db_path, clock):
    opened = await Channel.open(db_path, clock)
    try:
        yield opened
    finally:
        await opened.engine.stop()


@pytest.fixture
async def connected(channel):
    await channel.connect()
    return channel
