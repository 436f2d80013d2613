"""Which routes the client may resend after a lost answer, pinned down: reads, PUT and DELETE, pure computations,
the upsert, event submissions and keyed writes. Everything else (creations, wallet moves, PATCHes, archive,
retry, reset) is sent once when its answer is lost (docs/client.md lists both sets)."""

from __future__ import annotations

import re
from pathlib import Path

from scrip_actor.client import ROUTES

_WRITES_SENT_ONCE = {
    "create_program",
    "update_program",
    "fund_wallet",
    "burn_wallet",
    "link_asset",
    "create_asset",
    "update_asset",
    "update_participant",
    "set_participant_status",
    "merge_attributes",
    "create_reward",
    "update_reward",
    "create_tier",
    "update_tier",
    "archive_tier",
    "create_automation",
    "update_automation",
    "trigger_automation",
    "cancel_automation",
    "create_rule",
    "update_rule",
    "reset_budget",
    "retry_event",
    "create_webhook_endpoint",
    "update_webhook_endpoint",
    "rotate_webhook_secret",
    "retry_webhook_delivery",
    "create_backtest",
    "run_backtest",
    "cancel_backtest",
}
_KEYED = {
    "adjust_balance",
    "hold_balance",
    "release_balance",
    "forfeit_balance",
    "void_hold_balance",
    "transfer",
    "redeem",
    "redeem_item",
    "reverse_redemption",
}


def test_the_routes_sent_once_are_exactly_the_unkeyed_non_idempotent_writes() -> None:
    assert {name for name, route in ROUTES.items() if not route.repeatable} == _WRITES_SENT_ONCE


def test_every_read_put_and_delete_is_repeatable() -> None:
    for name, route in ROUTES.items():
        if route.method in ("GET", "PUT", "DELETE"):
            assert route.repeatable, name
        if route.method == "PATCH":
            assert not route.repeatable, name


def test_the_keyed_writes_are_the_bodies_with_an_optional_key() -> None:
    assert {name for name, route in ROUTES.items() if route.keyed} == _KEYED


def test_the_documented_lists_match() -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "client.md").read_text()
    sent_once = text.split("**Non-idempotent writes without a key are not retried", 1)[1].split("If one of them", 1)[0]
    assert set(re.findall(r"`(\w+)`", sent_once)) == _WRITES_SENT_ONCE
    keyed = text.split("The keyed writes are", 1)[1].split(":", 1)[0]
    assert set(re.findall(r"`(\w+)`", keyed)) == _KEYED
