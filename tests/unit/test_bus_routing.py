"""Partition routing: every event of an entity goes to one partition, the
same one in every run."""

from __future__ import annotations

import subprocess
import sys
import zlib

from hypothesis import given
from hypothesis import strategies as st

from engine.bus import routing
from engine.bus.routing import PartitionRouter
from engine.events import ENTITY_KEY_MAX

# Any text an entity key could be built from, and some it could not (lone
# surrogates): routing must not be the place where a strange key breaks.
CHARACTERS = st.characters() | st.characters(categories=["Cs"])
KEYS = st.builds(
    lambda kind, ident: f"{kind}:{ident}",
    st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True),
    st.text(CHARACTERS, min_size=1, max_size=ENTITY_KEY_MAX),
) | st.text(CHARACTERS, max_size=512)
PARTITIONS = st.integers(min_value=-2, max_value=64)


@given(KEYS, PARTITIONS)
def test_a_key_routes_within_range_and_always_alike(key, partitions):
    router = PartitionRouter(partitions)
    route = router.partition_of(key)
    assert 0 <= route < router.partitions == max(1, partitions)
    assert PartitionRouter(partitions).partition_of(key) == route, "a new router agrees"
    assert router.partition_of(key) == route, "asking again changes nothing"


@given(st.text(st.characters(codec="utf-8"), max_size=512), st.integers(1, 64))
def test_a_key_routes_by_the_checksum_of_its_utf8(key, partitions):
    """The route of any encodable key is its CRC-32 modulo the partitions: a
    published function anyone can recompute (a key with a lone surrogate
    cannot come from JSON or HTTP, and only has to route somewhere)."""
    assert PartitionRouter(partitions).partition_of(key) == zlib.crc32(key.encode()) % partitions


def test_routes_are_the_same_in_another_process():
    """Unlike ``hash()``, the route does not change with the interpreter's
    hash seed, so a debugging session can repeat a run's routing exactly."""
    keys = ["parcel:1", "order:ä-42", "shop:東京", "x:" + "9" * 190]
    here = [PartitionRouter(7).partition_of(key) for key in keys]
    # The module alone (it needs nothing of the engine): a fresh interpreter
    # starts in well under a second.
    code = (
        "import importlib.util as u;"
        f"s = u.spec_from_file_location('routing', {routing.__file__!r});"
        "m = u.module_from_spec(s); s.loader.exec_module(m);"
        f"print([m.PartitionRouter(7).partition_of(k) for k in {keys!r}])"
    )
    for seed in ("1", "2"):
        out = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": seed, "PATH": ""},
        ).stdout
        assert out.strip() == str(here)


class _E:
    def __init__(self, entity: str, n: int) -> None:
        self.entity = entity
        self.n = n


@given(st.lists(st.tuples(st.text(max_size=8), st.integers()), max_size=50), st.integers(1, 8))
def test_split_keeps_every_event_once_in_its_partition_and_order(drawn, partitions):
    router = PartitionRouter(partitions)
    events = [_E(key, n) for key, n in drawn]
    split = router.split(events)
    assert len(split) == router.partitions
    for index, part in enumerate(split):
        assert all(router.partition_of(e.entity) == index for e in part)
        assert part == [e for e in events if router.partition_of(e.entity) == index]
    assert sorted(id(e) for part in split for e in part) == sorted(map(id, events))
