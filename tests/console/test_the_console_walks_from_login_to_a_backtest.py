"""The web console in a real headless Chromium: login, a participant, an event's evaluations, simulate, backtest.

Every request the browser makes is recorded: the API key must never be part of a URL. A wrong key must show a
clear error. With ``SCRIP_CONSOLE_SCREENSHOTS=<dir>`` the test also writes one PNG per page there (docs/console/).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.console.conftest import API_KEY, MARKUP, Seeded

pytestmark = pytest.mark.browser

_TIMEOUT_MS = 10_000


def _screenshot(page: Any, name: str, full_page: bool = True) -> None:
    """A PNG of the page; ``full_page=False`` keeps long pages (the journal) under the docs' 300 KB per image."""
    target = os.environ.get("SCRIP_CONSOLE_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(target) / f"{name}.png"), full_page=full_page)


def test_login_participant_event_simulate_backtest_without_the_key_in_any_url(seeded: Seeded, browser: Any) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(_TIMEOUT_MS)
    urls: list[str] = []
    page_errors: list[str] = []
    page.on("request", lambda request: urls.append(request.url))
    page.on("pageerror", lambda error: page_errors.append(str(error)))
    page.on("console", lambda message: page_errors.append(message.text) if message.type == "error" else None)

    page.goto(seeded.base_url + "/console")
    page.fill("#api-key", "sk_wrong_key")
    page.click("#login button[type=submit]")
    assert "refused (401 unauthorized)" in page.text_content("#login-error")
    _screenshot(page, "login-wrong-key")
    page_errors.clear()  # the browser logs the refused fetch's 401 itself

    page.fill("#api-key", API_KEY)
    page.click("#login button[type=submit]")
    page.wait_for_selector("text=Coffee Club")
    assert "995.00" in page.text_content("main")  # the CASH wallet: 1000 funded, 5 drawn by the cashback rule
    _screenshot(page, "programs")

    page.click("nav >> text=Participants")
    page.fill("input[name=external_id]", seeded.external_id)
    page.click("form button[type=submit]")
    page.wait_for_selector("text=Participant user_123")
    assert "20.00" in page.text_content("main")  # two of three purchases matched: 2 × 10
    assert "CASH (Cashback)" in page.text_content("main")  # its lots, with their expiry
    assert "vip" in page.text_content("main") and MARKUP in page.text_content("main")
    assert page.query_selector("#injected") is None  # the attribute was rendered as text, not parsed
    _screenshot(page, "participant")

    page.click("nav >> text=Events")
    page.select_option("select[name=status]", "COMPLETED")
    page.click("form button[type=submit]")
    page.wait_for_function("location.hash.includes('status=COMPLETED')")
    page.wait_for_selector(f"a[href='#/events/{seeded.event_ids[2]}']")
    assert all(event_id in page.text_content("main") for event_id in seeded.event_ids)
    page.click(f"a[href='#/events/{seeded.event_ids[0]}']")
    evaluations = page.wait_for_selector("#rule-evaluations table")
    assert "MATCHED" in evaluations.text_content() and seeded.rule_id in evaluations.text_content()
    assert "PARTICIPANT" in page.text_content("#journal-entries")
    assert page.text_content("#event-status") == "COMPLETED"
    _screenshot(page, "event")

    page.goto(f"{seeded.base_url}/console#/rules/{seeded.rule_id}")
    page.click("#validate")
    page.wait_for_selector("#validate-result .ok")
    page.fill("#simulate-event", '{"type": "purchase", "amount": 120.0}')
    page.fill("#simulate-state", '{"nope": 1}')
    page.click("#simulate")
    assert "400 bad_request" in page.wait_for_selector("#simulate-result .error").text_content()
    page_errors.clear()  # the browser logs the refused call's 400 itself
    page.fill("#simulate-state", '{"tags": ["vip"], "counters": {}, "attributes": {}}')
    page.click("#simulate")
    assert page.wait_for_selector("#simulate-result .ok").text_content().startswith("matched")
    page.fill("#condition", "event.type == 'purchase' && event.amount >= 50.0")
    page.click("#backtest")
    page.wait_for_selector("#backtest-status")
    assert page.text_content("#backtest-status") == "COMPLETED"
    rows = page.text_content("#backtest-rules")
    assert seeded.rule_name in rows and "30.00" in rows  # the lower bar matches all three purchases
    # the whole set is sent back; only the edited rule reads "changed", the restated one "unchanged"
    changes = [row.text_content() for row in page.query_selector_all("#backtest-rules tr")]
    assert any(seeded.rule_name in row and "changed" in row and "unchanged" not in row for row in changes), changes
    assert any(seeded.rule_name not in row and "unchanged" in row for row in changes[1:]), changes
    # per asset, the proposed credit (30.00), the live one (20.00) and their difference (10.00) side by side
    assets = [row.text_content() for row in page.query_selector_all("#backtest-assets tr")]
    assert any("30.00" in row and "20.00" in row and "10.00" in row for row in assets), assets
    _screenshot(page, "rule-backtest")

    page.click("nav >> text=Journal")
    # the journal's own list, not the rule page's panels still shown until the hash change routes
    page.wait_for_selector("#journal .panel")
    journal = page.text_content("main")
    # every entry (newest first, the wallet-funded cashback among them) with its place in the hash chain
    assert "SYSTEM_ISSUANCE" in journal and "CASH" in journal
    assert "previous_hash" in journal and "entry_hash" in journal
    _screenshot(page, "journal", full_page=False)
    page.click("nav >> text=Overview")
    page.wait_for_selector("[data-metric=scrip_engine_events_completed_total]")
    assert page.text_content("[data-metric=scrip_engine_events_completed_total]") == "3"
    _screenshot(page, "overview")

    assert urls, "the browser made no requests"
    assert not [url for url in urls if API_KEY in url or "sk_wrong_key" in url]
    assert page_errors == []
    assert page.evaluate("sessionStorage.getItem('scrip.apiKey')") == API_KEY
    context.close()
