"""What a client of the hosted Scrip API sees here too, over a real server: evaluation records with the hosted
statuses and fields (error and timeout skips only with ``include_skipped=true``), events with ``event_type``,
``received_at``, ``updated_at`` and the PENDING status, journal postings with their owner ids and asset symbol,
``/rules/validate``'s ``note``, and ``rule_history_id`` pointing at the rule history entry of the version used."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.http.conftest import Api


async def _rule(api: Api, program: dict[str, Any], asset: dict[str, Any], condition: str, **fields: Any) -> Any:
    credit = [{"type": "CREDIT", "asset_id": asset["id"], "amount": fields.pop("amount", "1")}]
    body = {"program_id": program["id"], "name": condition[:40], "condition": condition, "actions": credit}
    return await api.ok("POST", "/v1/rules", 201, json={**body, **fields})


async def _send(api: Api, program: dict[str, Any], key: str, data: dict[str, Any], **fields: Any) -> Any:
    body = {"program_id": program["id"], "external_id": "u1", "idempotency_key": key, "event_data": data, **fields}
    accepted = await api.ok("POST", "/v1/events", 202, json=body)
    await api.wait_event(accepted["id"])
    return accepted


async def test_evaluations_carry_the_hosted_statuses_and_hide_error_skips_unless_asked(api: Api) -> None:
    program, asset = await api.program_and_asset()
    broken = await _rule(api, program, asset, "event.missing > 1.0", order=1)
    later = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    window = await _rule(api, program, asset, "true", order=2, active_from=later)
    unmatched = await _rule(api, program, asset, "event.kind == 'refund'", order=3)
    stopper = await _rule(api, program, asset, "true", order=4, stop_after_match=True)
    stopped = await _rule(api, program, asset, "true", order=5)
    accepted = await _send(api, program, "k1", {"kind": "purchase"})

    shown = await api.ok("GET", f"/v1/events/{accepted['id']}")
    assert [(e["rule_id"], e["status"], e["reason"]) for e in shown["rule_evaluations"]] == [
        (window["id"], "SKIPPED", "OUTSIDE_TIME_WINDOW"),
        (unmatched["id"], "SKIPPED", "CONDITION_FALSE"),
        (stopper["id"], "SUCCESS", None),
        (stopped["id"], "SKIPPED", "STOPPED_BY_PRIOR_RULE"),
    ]
    assert shown["rule_evaluations"][-1]["stopped_by_rule_id"] == stopper["id"]
    # Our own status stays beside the hosted one.
    assert [e["outcome"] for e in shown["rule_evaluations"]] == ["SKIPPED", "NOT_MATCHED", "MATCHED", "STOPPED"]

    everything = await api.ok("GET", f"/v1/events/{accepted['id']}", params={"include_skipped": "true"})
    first = everything["rule_evaluations"][0]
    assert (first["rule_id"], first["status"], first["reason"]) == (broken["id"], "SKIPPED_ERROR", "CONDITION_ERROR")
    assert first["error_message"] and "missing" in first["error_message"]
    assert everything["rule_evaluations"][1:] == shown["rule_evaluations"]
    for evaluation in everything["rule_evaluations"]:
        assert set(evaluation) >= {
            "id",
            "rule_id",
            "rule_name",
            "rule_history_id",
            "status",
            "reason",
            "stopped_by_rule_id",
            "error_message",
            "created_at",
        }
        assert evaluation["created_at"] == everything["processed_at"]
    assert len({e["id"] for e in everything["rule_evaluations"]}) == 5  # one id per record, the same on every read
    again = await api.ok("GET", f"/v1/events/{accepted['id']}", params={"include_skipped": "true"})
    assert again["rule_evaluations"] == everything["rule_evaluations"]
    # The list shows evaluations as a GET does by default.
    [listed] = (await api.ok("GET", "/v1/events"))["data"]
    assert listed["rule_evaluations"] == shown["rule_evaluations"]
    await api.error("GET", f"/v1/events/{accepted['id']}", 400, "bad_request", params={"include_skipped": "maybe"})
    await api.error("GET", f"/v1/events/{accepted['id']}", 400, "bad_request", params={"verbose": "true"})


async def test_rule_history_id_names_the_history_entry_of_the_version_used(api: Api) -> None:
    program, asset = await api.program_and_asset()
    rule = await _rule(api, program, asset, "true")
    before = await _send(api, program, "k1", {})
    await api.ok("PATCH", f"/v1/rules/{rule['id']}", json={"name": "renamed"})
    after = await _send(api, program, "k2", {})
    history = (await api.ok("GET", f"/v1/rules/{rule['id']}/history"))["data"]
    ids_by_version = {entry["version"]: entry["id"] for entry in history}
    assert len(set(ids_by_version.values())) == 2
    assert all(entry["program_id"] == program["id"] and entry["rule_id"] == rule["id"] for entry in history)
    [used_before] = (await api.ok("GET", f"/v1/events/{before['id']}"))["rule_evaluations"]
    [used_after] = (await api.ok("GET", f"/v1/events/{after['id']}"))["rule_evaluations"]
    assert used_before["rule_history_id"] == ids_by_version[1] and used_before["rule_version"] == 1
    assert used_after["rule_history_id"] == ids_by_version[2] and used_after["rule_name"] == "renamed"
    # History filters: change_type and from/to on changed_at.
    updated = await api.ok("GET", f"/v1/rules/{rule['id']}/history", params={"change_type": "updated"})
    assert [entry["version"] for entry in updated["data"]] == [2]
    since = await api.ok("GET", f"/v1/rules/{rule['id']}/history", params={"from": history[0]["changed_at"]})
    assert [entry["version"] for entry in since["data"]] == [2]
    until = await api.ok("GET", f"/v1/rules/{rule['id']}/history", params={"to": history[0]["changed_at"]})
    assert [entry["version"] for entry in until["data"]] == [1]
    await api.error("GET", f"/v1/rules/{rule['id']}/history", 400, "bad_request", params={"change_type": "renamed"})


async def test_events_carry_type_received_and_updated_times_and_start_pending(api: Api) -> None:
    program, _ = await api.program_and_asset()
    body = {"program_id": program["id"], "external_id": "u1", "idempotency_key": "k1", "event_data": {}}
    accepted = await api.ok("POST", "/v1/events", 202, json=body)
    assert accepted["status"] == "PENDING"
    assert accepted["participant_id"] is None  # named by external id: bound when processed
    done = await api.wait_event(accepted["id"])
    assert done["event_type"] == "EXTERNAL"
    assert done["received_at"] == done["created_at"]
    assert done["updated_at"] == done["processed_at"] is not None
    # The 202 names the participant when the request did.
    named = {**body, "idempotency_key": "k2", "external_id": None, "participant_id": done["participant_id"]}
    named.pop("external_id")
    by_id = await api.ok("POST", "/v1/events", 202, json=named)
    assert by_id["participant_id"] == done["participant_id"] and by_id["external_id"] == "u1"
    batch = await api.ok("POST", "/v1/events/batch", 202, json={"events": [{**named, "idempotency_key": "k3"}]})
    assert batch["results"][0]["event"]["participant_id"] == done["participant_id"]
    await api.wait_event(by_id["id"])
    # The hosted type and status filters.
    assert len((await api.ok("GET", "/v1/events", params={"event_type": "EXTERNAL"}))["data"]) == 3
    assert (await api.ok("GET", "/v1/events", params={"event_type": "SYSTEM"}))["data"] == []
    await api.error("GET", "/v1/events", 400, "bad_request", params={"event_type": "INTERNAL"})
    await api.ok("GET", "/v1/events", params={"status": "RECEIVED"})  # the hosted name: here read as PENDING
    await api.ok("GET", "/v1/events", params={"status": "PENDING"})


async def test_events_list_oldest_first_on_request_and_refuses_orders_it_cannot_serve(api: Api) -> None:
    program, _ = await api.program_and_asset()
    ids = [(await _send(api, program, f"k{n}", {"n": n}))["id"] for n in range(3)]
    newest = await api.ok("GET", "/v1/events")
    assert [e["id"] for e in newest["data"]] == ids[::-1]
    oldest = await api.ok("GET", "/v1/events", params={"sort_dir": "asc", "sort_by": "created_at", "limit": 2})
    assert [e["id"] for e in oldest["data"]] == ids[:2]
    rest = await api.ok("GET", "/v1/events", params={"sort_dir": "asc", "cursor": oldest["pagination"]["next_cursor"]})
    assert [e["id"] for e in rest["data"]] == ids[2:]
    by_external = await api.ok("GET", "/v1/events", params={"sort_dir": "asc", "external_id": "u1"})
    assert [e["id"] for e in by_external["data"]] == ids
    for order in ("event_timestamp", "status"):  # no index holds these orders: refused, not served slowly
        await api.error("GET", "/v1/events", 400, "bad_request", params={"sort_by": order})
    await api.error("GET", "/v1/events", 400, "bad_request", params={"sort_dir": "up"})


async def test_journal_postings_carry_owner_ids_and_symbol_and_the_hash_still_verifies(api: Api) -> None:
    program, asset = await api.program_and_asset()
    await _rule(api, program, asset, "true", amount="10")
    accepted = await _send(api, program, "k1", {})
    event = await api.ok("GET", f"/v1/events/{accepted['id']}")
    [entry] = (await api.ok("GET", "/v1/journal-entries", params={"event_id": event["id"]}))["data"]
    assert entry["program_name"] == "Rewards" and entry["created_by_api_key_id"] is None
    issuance, credit = sorted(entry["postings"], key=lambda posting: posting["amount"])
    assert credit["entity_type"] == "PARTICIPANT" and credit["participant_id"] == event["participant_id"]
    assert issuance["entity_type"] == "SYSTEM" and issuance["participant_id"] is None
    for posting in entry["postings"]:
        assert posting["asset_symbol"] == "PTS"
        assert posting["program_id"] == program["id"]
        assert posting["group_id"] is None
        assert posting["created_at"] == entry["created_at"]
    assert len({posting["id"] for posting in entry["postings"]}) == 2
    assert await api.ok("GET", f"/v1/journal-entries/{entry['id']}") == entry
    report = await api.engine.verify()  # the stored entries, and their hash chain, are unchanged
    assert report.ok, report.problems


async def test_journal_takes_the_hosted_filters(api: Api) -> None:
    program, asset = await api.program_and_asset()
    await _rule(api, program, asset, "true", amount="10")
    accepted = await _send(api, program, "k1", {})
    participant_id = (await api.ok("GET", f"/v1/events/{accepted['id']}"))["participant_id"]
    hold = {"program_id": program["id"], "asset_id": asset["id"], "description": "hold", "amount": "4"}
    await api.ok("POST", f"/v1/participants/{participant_id}/balances/hold", json=hold)

    async def actions(**params: Any) -> list[str]:
        return [entry["action_type"] for entry in (await api.ok("GET", "/v1/journal-entries", params=params))["data"]]

    assert await actions() == ["HOLD", "CREDIT"]
    assert await actions(action_type="CREDIT") == ["CREDIT"]
    assert await actions(bucket="HELD") == ["HOLD"]
    assert await actions(external_id="u1") == ["HOLD", "CREDIT"]
    assert await actions(external_id="nobody") == []
    assert await actions(external_id="u1", participant_id="someone-else") == []
    assert await actions(group_id="g1") == []  # groups are not built: no posting belongs to one
    assert await actions(min_amount="10") == ["CREDIT"]  # the credit's +10.00 posting
    assert await actions(max_amount="-5") == ["CREDIT"]  # the issuance's -10.00 posting
    assert await actions(min_amount="-4", max_amount="-4") == ["HOLD"]  # AVAILABLE -4.00
    assert await actions(participant_id=participant_id, bucket="HELD", min_amount="4", max_amount="4") == ["HOLD"]
    await api.error("GET", "/v1/journal-entries", 400, "bad_request", params={"min_amount": "lots"})
    await api.error("GET", "/v1/journal-entries", 400, "bad_request", params={"bucket": "PENDING"})
    await api.error("GET", "/v1/journal-entries", 400, "bad_request", params={"amount": "1"})


async def test_validate_answers_a_note(api: Api) -> None:
    valid = await api.ok("POST", "/v1/rules/validate", json={"condition": "event.amount > 1.0"})
    assert valid["valid"] is True and "syntax" in valid["note"]
    invalid = await api.ok("POST", "/v1/rules/validate", json={"condition": "event.amount >"})
    assert invalid["valid"] is False and invalid["note"] == valid["note"]
