"""What a person sees in the inspector, in chromium, over the demo's database."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from engine.charts.configuration import atomic_states
from engine.chartset import ChartSet

from .conftest import JUNK_SOURCE, LATE_EVENT, ServedInspector

pytestmark = pytest.mark.browser


def label_of(charts: ChartSet, chart: str, state_id: str) -> str:
    """The label a person reads for a dotted state id."""
    states = charts.by_name[chart].spec.states
    state = None
    for part in state_id.split("."):
        state = states[part]
        states = state.states
    assert state is not None
    return state.label


def open_first_order(page: Any, inspector: ServedInspector) -> str:
    page.goto(inspector.url + "/")
    page.keyboard.press("/")  # the search box, from anywhere on the page
    page.keyboard.type("order:")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"q=order"))
    keys = page.locator("table.entities tbody td:first-child a")
    assert keys.count() >= 1
    assert all(text.startswith("order:") for text in keys.all_inner_texts())
    key = keys.first.inner_text()
    keys.first.click()
    page.wait_for_selector("h1")
    assert page.locator("h1").inner_text() == key
    return key


def test_search_an_order_open_it_and_see_its_timeline_and_lit_state(
    page: Any, inspector: ServedInspector, charts: ChartSet, shots: Path
) -> None:
    page.goto(inspector.url + "/")
    counts = page.locator("section.counts table")
    counts.wait_for()
    assert "order" in counts.inner_text()
    page.screenshot(path=str(shots / "entities.png"))

    open_first_order(page, inspector)
    rows = page.locator("#timeline tr")
    assert rows.count() >= 5
    assert "order.status_changed" in page.locator("#timeline").inner_text()
    assert "transitioned" in page.locator("#timeline").inner_text()
    commands = page.locator("table.commands").inner_text()
    assert "fetch_order_detail" in commands and "done" in commands
    assert "logged" in commands  # the detail a fetch brought back is in the log

    state = page.locator("#current-state").inner_text()
    page.wait_for_selector("#diagram[data-rendered] svg")
    lit = page.locator("#diagram svg g.active")
    lit_text = " ".join(t or "" for t in lit.all_text_contents())
    for atomic in atomic_states(state):
        assert label_of(charts, "order", atomic) in lit_text, (atomic, lit_text)
    page.screenshot(path=str(shots / "entity.png"), full_page=False)


def test_expanding_an_event_shows_the_data_it_changed(
    page: Any, inspector: ServedInspector
) -> None:
    open_first_order(page, inspector)
    transitioned = page.locator("#timeline tr.outcome-transitioned").last
    # By keyboard: a disclosure opens with Enter.
    transitioned.locator("details.diff summary").focus()
    page.keyboard.press("Enter")
    diff = transitioned.locator(".diff-table")
    diff.wait_for()
    changed = diff.locator("tbody tr")
    assert changed.count() >= 1
    text = diff.inner_text()
    assert re.search(r"\b(added|changed|removed)\b", text)


def test_a_diff_opened_before_the_script_arrived_still_loads(
    page: Any, inspector: ServedInspector
) -> None:
    # A reader quicker than the deferred script: the disclosure's toggle event
    # goes by before anything listens for it.
    open_first_order(page, inspector)
    entity_url = page.url
    script = inspector.url + "/static/inspector.js"
    page.route(re.compile(r".*/static/inspector\.js$"), lambda route: route.abort())
    page.goto(entity_url)
    transitioned = page.locator("#timeline tr.outcome-transitioned").last
    transitioned.locator("details.diff summary").click()
    page.wait_for_timeout(100)  # the toggle event has been dispatched, unheard
    page.unroute(re.compile(r".*/static/inspector\.js$"))
    page.add_script_tag(url=script)
    diff = transitioned.locator(".diff-table")
    diff.wait_for()
    assert diff.locator("tbody tr").count() >= 1


def test_retrying_a_dead_letter_logs_its_event_and_it_appears_live(
    page: Any, inspector: ServedInspector, shots: Path
) -> None:
    page.goto(inspector.url + "/dead-letters")
    letter = page.locator("table.letters tbody tr", has_text="warehouse")
    letter.wait_for()
    assert "parcel.pack" in letter.inner_text() or "parcel" in letter.inner_text()
    page.screenshot(path=str(shots / "dead-letters.png"))
    live = page.locator("#live-events")
    assert live.locator("tr").count() == 0

    letter.get_by_role("button", name=re.compile("Retry")).click()
    status = page.locator("#status")
    status.filter(has_text="logged as seq").wait_for()
    assert LATE_EVENT["entity"] in status.inner_text()
    # No reload: the event arrives through the live feed.
    fresh = live.locator("tr", has_text=str(LATE_EVENT["entity"]))
    fresh.wait_for()
    assert "parcel.pack" in fresh.inner_text()
    assert "transitioned" in fresh.inner_text()


def test_discarding_a_dead_letter_from_the_keyboard_takes_it_off_the_list(
    page: Any, inspector: ServedInspector
) -> None:
    page.goto(inspector.url + "/dead-letters")
    letter = page.locator("table.letters tbody tr", has_text=JUNK_SOURCE)
    letter.wait_for()
    assert "its input is not JSON" in letter.inner_text()  # no Retry for it: only Discard
    letter_id = letter.locator("td").first.inner_text()
    reason = page.get_by_label(f"Why discard dead letter {letter_id}")
    reason.focus()
    page.keyboard.type("a jammed scanner, not an order")
    page.keyboard.press("Tab")  # the Discard button is next
    assert "Discard" in page.evaluate("document.activeElement.textContent")
    page.keyboard.press("Enter")
    page.locator("#status").filter(has_text=f"dead letter {letter_id} discarded").wait_for()
    page.reload()
    page.locator("table.letters").wait_for()
    assert page.locator(f"#letter-{letter_id}").count() == 0
    assert page.locator("table.letters tbody tr", has_text="warehouse").count() == 1


def test_what_if_under_the_other_order_version_shows_where_outcomes_differ(
    page: Any, inspector: ServedInspector, shots: Path
) -> None:
    key = open_first_order(page, inspector)
    oldest = page.locator("#timeline tr").last
    seq = oldest.get_attribute("data-seq")
    oldest.get_by_role("link", name=re.compile("What-if from here")).click()
    # The form comes filled in from the row: the entity and the event.
    assert page.get_by_label("Entity").input_value() == key
    assert page.get_by_label("From event (seq)").input_value() == seq
    assert page.locator("#whatif-result").count() == 0  # nothing runs until asked
    page.get_by_label("Chart version").select_option(label="order v1")
    page.get_by_role("button", name="Run what-if").click()
    result = page.locator("#whatif-result")
    result.wait_for()
    assert "under order v1" in result.inner_text()
    assert re.search(r"\d+ of \d+ events differ|No outcome differs", result.inner_text())
    assert result.locator("tbody tr").count() >= 1
    assert f"from seq {seq}" in result.inner_text()
    page.screenshot(path=str(shots / "what-if.png"))


def test_a_narrow_window_keeps_the_page_within_its_width(
    browser: Any, inspector: ServedInspector
) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    try:
        open_first_order(page, inspector)
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 1
        entity_url = page.url
        # Every control on every page has a name: no unlabelled field or button.
        for url in ("/", "/dead-letters", "/what-if", entity_url):
            page.goto(url if url.startswith("http") else inspector.url + url)
            unlabelled = page.evaluate(
                """[...document.querySelectorAll('input:not([type=hidden]), select, button')]
                   .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                                 && !el.textContent.trim()).map(el => el.outerHTML)"""
            )
            assert unlabelled == [], (url, unlabelled)
            width = page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert width <= 1, url
    finally:
        context.close()
