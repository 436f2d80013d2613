"""Over HTTP: an event with a hostile rule completes promptly, the rule skipped with the cost reason."""

from __future__ import annotations

import time

from tests.http.conftest import Api

BIG_TEXT = "ab" * 25_000  # 50 KB: within the test server's 64 KiB body limit
HOSTILE = "[event.s]" + ".map(a, a + a)" * 20 + ".size() == 1"  # doubling: 50 KB * 2**20 without the budget


async def test_hostile_rule_is_skipped_and_the_event_completes(api: Api) -> None:
    program, asset = await api.program_and_asset("Costly")
    credit = [{"type": "CREDIT", "asset_id": asset["id"], "amount": "10"}]
    for order, condition in ((1, HOSTILE), (2, "event.type == 'purchase'")):
        body = {"program_id": program["id"], "name": f"r{order}", "condition": condition, "actions": credit}
        await api.ok("POST", "/v1/rules", 201, json={**body, "order": order})
    started = time.perf_counter()
    accepted = await api.ok(
        "POST",
        "/v1/events",
        202,
        json={
            "program_id": program["id"],
            "external_id": "u1",
            "idempotency_key": "k1",
            "event_data": {"type": "purchase", "s": BIG_TEXT},
        },
    )
    await api.wait_event(accepted["id"])
    # A rule skipped on its cost bound is a SKIPPED_TIMEOUT, shown only on request (as the hosted API does).
    assert [e["status"] for e in (await api.ok("GET", f"/v1/events/{accepted['id']}"))["rule_evaluations"]] == [
        "SUCCESS"
    ]
    event = await api.ok("GET", f"/v1/events/{accepted['id']}", params={"include_skipped": "true"})
    assert time.perf_counter() - started < 2.0  # HTTP round trips included; the rules themselves take ms
    assert event["status"] == "COMPLETED", event
    evaluations = event["rule_evaluations"]
    assert [e["status"] for e in evaluations] == ["SKIPPED_TIMEOUT", "SUCCESS"]
    assert [e["outcome"] for e in evaluations] == ["SKIPPED", "MATCHED"]  # ours, kept beside the hosted status
    assert evaluations[0]["reason"] == "CONDITION_COST_EXCEEDED"
    assert evaluations[0]["error_message"].startswith("evaluation cost limit exceeded")
    participant = await api.ok("GET", f"/v1/participants/{event['participant_id']}")
    assert [b["available"] for b in participant["balances"]] == ["10.00"]
