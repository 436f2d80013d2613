"""Transfers over a real server: one entry for all recipients, the source's lots spent FIFO and new lots for the
recipients, all or nothing, self-transfer refused, idempotent replays (docs/money-out.md)."""

from __future__ import annotations

from typing import Any

from tests.http.conftest import Api
from tests.http.test_balance_operations import _lot_program


async def _member(api: Api, external_id: str) -> str:
    return str((await api.ok("POST", "/v1/participants", 201, json={"external_id": external_id}))["id"])


def _transfer(
    program: dict[str, Any], asset: dict[str, Any], recipients: list[dict[str, Any]], **fields: Any
) -> dict[str, Any]:
    return {
        "program_id": program["id"],
        "asset_id": asset["id"],
        "recipients": recipients,
        "description": "gift",
        **fields,
    }


async def test_a_transfer_to_several_recipients_is_one_entry(api: Api) -> None:
    program, miles, source_id = await _lot_program(api)  # "flyer" holds three lots of 5 miles
    ann, bob = await _member(api, "ann"), await _member(api, "bob")
    body = _transfer(
        program,
        miles,
        [{"external_id": "ann", "amount": "4"}, {"participant_id": bob, "amount": "3"}],
        source_external_id="flyer",
        idempotency_key="t1",
    )
    result = await api.ok("POST", "/v1/transfers", 201, json=body)
    assert (result["recipient_count"], result["total_amount"], result["source_id"]) == (2, "7", source_id)
    assert await api.ok("POST", "/v1/transfers", 200, json=body) == result  # a replay moves nothing
    entry = await api.ok("GET", f"/v1/journal-entries/{result['journal_entry_id']}")
    assert entry["action_type"] == "TRANSFER"
    assert sorted((p["entity_id"], p["amount"]) for p in entry["postings"]) == sorted(
        [(source_id, "-7"), (ann, "4"), (bob, "3")]
    )
    source_lots = (
        await api.ok(
            "GET",
            f"/v1/participants/{source_id}/balances/lots",
            params={"asset_id": miles["id"], "status": "AVAILABLE"},
        )
    )["data"]
    assert [lot["remaining"] for lot in source_lots] == ["3", "5"]  # FIFO: the first lot went whole, the second by 2
    [ann_lot] = (await api.ok("GET", f"/v1/participants/{ann}/balances/lots", params={"asset_id": miles["id"]}))["data"]
    assert (ann_lot["amount"], ann_lot["expires_at"]) == ("4", None)  # a new lot: the vintage resets
    assert (await api.engine.verify()).ok


async def test_refusals_move_nothing_for_anyone(api: Api) -> None:
    program, asset = await api.program_and_asset()
    source, ann = await _member(api, "src"), await _member(api, "ann")
    adjust = {
        "program_id": program["id"],
        "asset_id": asset["id"],
        "type": "CREDIT",
        "amount": "10",
        "description": "d",
    }
    await api.ok("POST", f"/v1/participants/{source}/balances/adjust", json=adjust)
    short = _transfer(
        program,
        asset,
        [{"participant_id": ann, "amount": "6"}, {"external_id": "ann", "amount": "5"}],
        source_participant_id=source,
    )
    await api.error("POST", "/v1/transfers", 422, "insufficient_balance", json=short)
    self_transfer = _transfer(program, asset, [{"participant_id": source, "amount": "1"}], source_participant_id=source)
    await api.error("POST", "/v1/transfers", 400, "self_transfer", json=self_transfer)
    unknown = _transfer(program, asset, [{"external_id": "nobody", "amount": "1"}], source_participant_id=source)
    await api.error("POST", "/v1/transfers", 404, "not_found", json=unknown)
    both = _transfer(
        program, asset, [{"external_id": "ann", "participant_id": ann, "amount": "1"}], source_participant_id=source
    )
    await api.error("POST", "/v1/transfers", 400, "bad_request", json=both)
    await api.error(
        "POST", "/v1/transfers", 400, "bad_request", json=_transfer(program, asset, [], source_participant_id=source)
    )
    group = _transfer(program, asset, [{"group_id": "g", "amount": "1"}], source_participant_id=source)
    await api.error("POST", "/v1/transfers", 400, "bad_request", json=group)
    await api.ok("PATCH", f"/v1/participants/{ann}/status", json={"status": "SUSPENDED"})
    await api.error(
        "POST",
        "/v1/transfers",
        409,
        "conflict",
        json=_transfer(program, asset, [{"participant_id": ann, "amount": "1"}], source_participant_id=source),
    )
    for who, expected in ((source, "10.00"), (ann, None)):
        balances = (await api.ok("GET", f"/v1/participants/{who}/balances"))["data"]
        assert (balances[0]["available"] if balances else None) == expected
    assert (await api.engine.verify()).ok
