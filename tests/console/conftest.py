"""Browser fixtures: a real ``scrip serve`` on loopback with seeded data, and Debian's headless Chromium.

The tests drive the system ``chromium`` through Playwright (never ``playwright install``'s downloaded browser).
Without chromium or Playwright they skip, saying which is missing; with ``SCRIP_REQUIRE_BROWSER=1`` (set by
``.ci/run``) a missing browser fails the run instead, so CI cannot go green by skipping them.
"""

from __future__ import annotations

import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
API_KEY = "sk_console_test_key"
MARKUP = '<img src=x id="injected"><b>Ann</b>'
_START_TIMEOUT_S = 60
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _missing_browser() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    if shutil.which("chromium") is None:
        return "no chromium on PATH (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright for Python is not installed (pip install -r requirements.txt)"
    return None


@pytest.fixture(scope="session")
def chromium_path() -> str:
    reason = _missing_browser()
    if reason is not None:
        if os.environ.get("SCRIP_REQUIRE_BROWSER") == "1":
            pytest.fail(f"SCRIP_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
    path = shutil.which("chromium")
    assert path is not None
    return path


@dataclass
class Seeded:
    """A running server and the ids of what was put in it."""

    base_url: str
    program_id: str
    asset_id: str
    rule_id: str
    rule_name: str
    event_ids: list[str]
    external_id: str


def _serve(data_dir: Path) -> tuple[subprocess.Popen[str], int]:
    env = {**os.environ, "SCRIP_API_KEY": API_KEY, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        [sys.executable, "-m", "scrip_actor", "serve", "--data-dir", str(data_dir), "--port", "0"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    stdout = process.stdout
    threading.Thread(target=lambda: [lines.put(line) for line in stdout], daemon=True).start()
    try:
        line = lines.get(timeout=_START_TIMEOUT_S)
    except queue.Empty:
        process.kill()
        raise AssertionError("scrip serve did not start listening") from None
    assert "listening on http://127.0.0.1:" in line, line
    return process, int(line.rsplit(":", 1)[1])


def _seed(client: httpx.Client) -> dict[str, Any]:
    """A program, two assets (one PREFUNDED with lots), two rules, three purchases of one participant (two of them match), a tag, an attribute."""

    def ok(method: str, path: str, **kwargs: Any) -> Any:
        response = client.request(method, path, **kwargs)
        assert response.is_success, (response.status_code, response.text)
        return response.json()

    program = ok("POST", "/v1/programs", json={"name": "Coffee Club"})
    asset = ok(
        "POST",
        "/v1/assets",
        json={
            "program_id": program["id"],
            "name": "Beans",
            "symbol": "BEAN",
            "inventory_mode": "SIMPLE",
            "issuance_policy": "UNLIMITED",
            "scale": 2,
        },
    )
    rule = ok(
        "POST",
        "/v1/rules",
        json={
            "program_id": program["id"],
            "name": "Big purchase",
            "condition": "event.type == 'purchase' && event.amount >= 100.0",
            "actions": [{"type": "CREDIT", "asset_id": asset["id"], "amount": "10"}],
        },
    )
    # A PREFUNDED LOT asset with a funded wallet, and a rule crediting expiring lots of it.
    cash = ok(
        "POST",
        "/v1/assets",
        json={
            "program_id": program["id"],
            "name": "Cashback",
            "symbol": "CASH",
            "inventory_mode": "LOT",
            "issuance_policy": "PREFUNDED",
            "scale": 2,
        },
    )
    ok("POST", f"/v1/programs/{program['id']}/assets/{cash['id']}/fund", json={"amount": "1000.00"})
    ok(
        "POST",
        "/v1/rules",
        json={
            "program_id": program["id"],
            "name": "Cashback on large orders",
            "condition": "event.amount >= 150.0",
            "actions": [{"type": "CREDIT", "asset_id": cash["id"], "amount": "5", "expires_at": "720h"}],
        },
    )
    events = [
        ok(
            "POST",
            "/v1/events",
            json={
                "program_id": program["id"],
                "external_id": "user_123",
                "idempotency_key": f"order-{index}",
                "event_data": {"type": "purchase", "amount": amount},
            },
        )["id"]
        for index, amount in enumerate([105.0, 80.0, 150.0])
    ]
    deadline_s = time.monotonic() + 10
    for event_id in events:
        while ok("GET", f"/v1/events/{event_id}")["status"] not in ("COMPLETED", "FAILED"):
            assert time.monotonic() < deadline_s, "events did not complete"
            time.sleep(0.02)
    participant_id = ok("GET", f"/v1/events/{events[0]}")["participant_id"]
    state = f"/v1/participants/{participant_id}/state"
    ok("PUT", f"{state}/tags/vip")
    # Markup in data must be shown as text: the console never turns data into HTML.
    ok("PUT", f"{state}/attributes/nickname", json={"value": MARKUP})
    return {"program": program, "asset": asset, "rule": rule, "events": events}


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory, chromium_path: str) -> Iterator[Seeded]:
    process, port = _serve(tmp_path_factory.mktemp("console") / "data")
    base_url = f"http://127.0.0.1:{port}"
    try:
        headers = {"Authorization": f"Bearer {API_KEY}"}
        with httpx.Client(base_url=base_url, headers=headers, timeout=10) as client:
            made = _seed(client)
        yield Seeded(
            base_url,
            made["program"]["id"],
            made["asset"]["id"],
            made["rule"]["id"],
            made["rule"]["name"],
            made["events"],
            "user_123",
        )
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        assert process.stdout is not None
        process.stdout.close()


@pytest.fixture(scope="module")
def browser(chromium_path: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()
