"""Events from the wire: `publish_raw` of an event's JSON text does what
`publish` of the same event as a mapping does (ENG-3's dead letters included),
whatever the text holds: unicode, ids at their limits, ``received_at`` given
or left to the engine, the same id twice."""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.events import ENTITY_KEY_MAX, check_entity_key
from tests.loop_engine import LoopEngine

# Text a JSON document can carry (no lone surrogates), with the awkward parts
# drawn often: multi-byte characters, quotes, backslashes, escapes.
texts = st.text(
    st.one_of(
        st.characters(codec="utf-8"),
        st.sampled_from(["é", "😀", "ß", '"', "\\", "\u2028", "\x00"]),
    ),
    max_size=12,
)
# Entity ids: printable non-ASCII, forbidden characters, and the length limit.
idents = st.one_of(
    st.text(st.sampled_from("abc019-_é😀ßΩ"), min_size=1, max_size=8),
    st.sampled_from(["a b", "a/b", "a\\b", "a..b", "\u00a0x", "x\ty"]),
    st.integers(ENTITY_KEY_MAX - 8, ENTITY_KEY_MAX - 6).map(lambda n: "7" * n),
)
event_ids = st.one_of(
    st.sampled_from(["e1", "e2", "e3"]),  # repeated: duplicates
    st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=6),
    st.sampled_from([511, 512, 513]).map(lambda n: "i" * n),  # max_length is 512
    st.just(""),
)
payloads = st.one_of(
    st.tuples(st.just("parcel.pack"), st.fixed_dictionaries({"weight_kg": st.floats(0, 1e6)})),
    st.tuples(st.just("parcel.pack"), st.just({"weight_kg": "heavy"})),
    st.tuples(st.just("parcel.note"), st.fixed_dictionaries({"text": texts})),
    st.tuples(
        st.just("parcel.ship"),
        st.fixed_dictionaries({"tracking_number": st.one_of(st.none(), texts)}),
    ),
    st.tuples(st.sampled_from(["parcel.deliver", "parcel.cancel", "parcel.nope"]), st.just({})),
)
documents = st.builds(
    lambda event_id, ident, typed, received_at, kind: {
        "event_id": event_id,
        "type": typed[0],
        "source": "wire",
        "entity": f"{kind}:{ident}",
        **({} if received_at is None else {"received_at": received_at}),
        "payload": typed[1],
    },
    event_ids,
    idents,
    payloads,
    st.one_of(st.none(), st.floats(1.6e9, 1.8e9)),
    st.sampled_from(["parcel", "parcel", "order"]),  # no chart serves "order" here
)


def test_eng3_publish_raw_does_what_publish_of_the_mapping_does(tmp_path):
    """For any sequence of event documents, one engine given each as a mapping
    (`publish`) and another given its JSON text (`publish_raw`, as bytes or
    str, ASCII-escaped or not) return the same receipts and end with the same
    entities and the same log, rows and ``received_at`` stamps included."""
    mapped, wired = LoopEngine(tmp_path / "mapped.db"), LoopEngine(tmp_path / "wired.db")
    runs = itertools.count()

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    @given(docs=st.lists(documents, min_size=1, max_size=6), ascii_only=st.booleans())
    def same_outcome(docs: list[dict[str, Any]], ascii_only: bool) -> None:
        run = next(runs)
        stamps: dict[str, float] = {}  # what each logged event's received_at must be
        keys = set()
        for doc in docs:
            # Each example its own entities and ids; the same id twice within it.
            doc = {**doc, "event_id": f"{run}.{doc['event_id']}" if doc["event_id"] else ""}
            doc["entity"] = doc["entity"].replace(":", f":{run}-", 1)
            text = json.dumps(doc, ensure_ascii=ascii_only)
            raw: str | bytes = text if run % 2 else text.encode()
            receipt = mapped.run(mapped.engine.publish(doc))
            assert wired.run(wired.engine.publish_raw(raw, "wire")) == receipt
            if receipt.outcome not in ("dead_letter", "duplicate"):
                assert receipt.event_id == doc["event_id"]
                stamps[doc["event_id"]] = doc.get("received_at", mapped.clock.now())
                keys.add(doc["entity"])
            for box in (mapped, wired):
                box.clock.advance(1.5)
        for key in keys:
            assert wired.run(wired.engine.entity(key)) == mapped.run(mapped.engine.entity(key))
            history = mapped.run(mapped.engine.history(key))
            assert wired.run(wired.engine.history(key)) == history
            for row in history:
                assert row["received_at"] == stamps[row["event_id"]]

    try:
        same_outcome()
    finally:
        mapped.close()
        wired.close()


async def test_eng7_a_raw_event_without_received_at_is_stamped_by_the_clock(sample_engine, clock):
    """The engine's clock stamps an event that does not say when it was
    received; one that says so keeps its own time."""
    clock.set(1_800_000_000.0)
    stamped = b'{"event_id":"r1","type":"parcel.pack","source":"wire","entity":"parcel:1"}'
    given_at = (
        b'{"event_id":"r2","type":"parcel.note","source":"wire","entity":"parcel:1",'
        b'"received_at":1700000123.5,"payload":{"text":"t"}}'
    )
    assert (await sample_engine.publish_raw(stamped, "wire")).outcome == "transitioned"
    assert (await sample_engine.publish_raw(given_at, "wire")).outcome == "transitioned"
    rows = await sample_engine.history("parcel:1")
    assert [(r["event_id"], r["received_at"]) for r in rows] == [
        ("r1", 1_800_000_000.0),
        ("r2", 1_700_000_123.5),
    ]


async def test_eng4_raw_events_of_one_entity_apply_in_the_order_published(sample_engine):
    """Many `publish_raw` calls in flight at once: each entity's events are
    applied in the order they were handed over (ENG-4), every receipt is its
    own event's, and the queue taking no more (a full partition) loses none."""
    texts = []
    for n in range(400):
        doc = {
            "event_id": f"w{n}",
            "type": "parcel.note",
            "source": "wire",
            "entity": f"parcel:{n % 7}",
            "payload": {"text": str(n)},
        }
        texts.append(json.dumps(doc))
    receipts = await asyncio.gather(*(sample_engine.publish_raw(t, "wire") for t in texts))
    assert [r.event_id for r in receipts] == [f"w{n}" for n in range(400)]
    assert {r.outcome for r in receipts} == {"transitioned"}
    for key in range(7):
        entity = await sample_engine.entity(f"parcel:{key}")
        assert entity is not None
        assert entity.data["notes"] == [str(n) for n in range(key, 400, 7)]


def test_sec5_the_key_check_refuses_exactly_whitespace_and_path_separators():
    """The entity id check refuses an id holding any character that is not
    printable, that ``str.isspace`` calls whitespace, "/" or "\\", and no
    other: every code point tried, against the per-character rule."""
    for code in range(sys.maxunicode + 1):
        char = chr(code)
        expected = not char.isprintable() or char.isspace() or char in "/\\"
        try:
            check_entity_key(f"parcel:a{char}")
        except ValueError:
            assert expected, hex(code)
        else:
            assert not expected, hex(code)
