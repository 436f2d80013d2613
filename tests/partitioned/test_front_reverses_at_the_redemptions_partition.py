"""A redemption's reversal through the front: produced to the partition the redemption's id names (the record names
the redemption, not its participant), applied there once with a reversal id named by the front (its idempotency key
claimed across partitions in the redemption's program), answered as the embedded route answers (201, 200 for the
same key again, the refusal's own status), and found through the front's reads.

Real Tansu, the real front (Hypercorn on loopback), engine roles with their readers and idempotency claims on,
real LMDB; `scrip verify` on every store afterwards, and the partition replayed from offset 0 makes the same
reversals.
"""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from scrip_actor.engine import open_engine
from scrip_actor.model import BalanceOperation
from scrip_actor.partitioned import partition_data_dir
from scrip_actor.partitioned._claiming import claim_partition_for
from scrip_actor.partitioned._operation_records import REVERSAL, ParticipantOperation, operation_hash
from scrip_actor.partitioned._partition_ids import partition_of
from tests.partitioned.partition_setup import config_for, verified_and_replayed
from tests.partitioned.test_front_routes_reads_to_the_owning_partition import AUTH, PARTITIONS, _running
from tests.partitioned.test_front_runs_a_balance_operation_at_its_participants_partition import (
    _balance,
    _on,
    _participant_with_points,
)


async def test_a_reversal_runs_once_at_the_redemptions_partition(broker: str, tmp_path: Path) -> None:
    redemption_id = reversal_id = ""
    async with _running(broker, tmp_path) as (running, program_id):
        front = running.front
        asset_id = (await front.get(f"/v1/programs/{program_id}/assets", headers=AUTH)).json()["data"][0]["id"]
        bob = await _participant_with_points(running, program_id, _on(1, "bob"), 5)
        redeem = {"program_id": program_id, "asset_id": asset_id, "amount": "4", "description": "mug"}
        created = await front.post(f"/v1/participants/{bob}/redemptions", json=redeem, headers=AUTH)
        assert created.status_code == 201, created.text
        redemption_id = created.json()["id"]
        assert partition_of(redemption_id) == 1
        key = next(
            f"v{n}" for n in range(1000) if claim_partition_for("operations:" + program_id, f"v{n}", PARTITIONS) == 2
        )  # the key's claim lives on another partition than the redemption's
        path = f"/v1/redemptions/{redemption_id}/reverse"
        body = {"reason": "broken mug", "amount": "1", "idempotency_key": key}

        reversed_once = await front.post(path, json=body, headers=AUTH)
        assert reversed_once.status_code == 201, reversed_once.text
        reversal = reversed_once.json()
        reversal_id = reversal["id"]
        assert partition_of(reversal_id) == 1
        assert (reversal["redemption_id"], reversal["amount"], reversal["reason"]) == (redemption_id, "1", "broken mug")
        again = await front.post(path, json=body, headers=AUTH)
        assert (again.status_code, again.json()["id"]) == (200, reversal_id), again.text
        changed = await front.post(path, json={**body, "amount": "2"}, headers=AUTH)
        assert changed.status_code == 409 and changed.json()["code"] == "idempotency_conflict", changed.text
        assert (await _balance(running, bob, asset_id))["available"] == "2"

        found = await front.get(f"/v1/redemptions/{redemption_id}", headers=AUTH)
        assert (found.json()["reversed_amount"], found.json()["status"]) == ("1", "PARTIALLY_REVERSED"), found.text
        listed = await front.get(f"/v1/redemptions/{redemption_id}/reversals", headers=AUTH)
        assert [item["id"] for item in listed.json()["data"]] == [reversal_id], listed.text
        entry = await front.get(f"/v1/journal-entries/{reversal['journal_entry_id']}", headers=AUTH)
        assert entry.json()["action_type"] == "REDEMPTION_REVERSAL", entry.text

        too_much = await front.post(path, json={"reason": "all of it", "amount": "4"}, headers=AUTH)
        assert too_much.status_code == 400 and too_much.json()["code"] == "bad_request", too_much.text
        malformed = await front.post(path, json={"amount": "1"}, headers=AUTH)  # no reason
        assert malformed.status_code == 400, malformed.text
        unknown = "00000001-0000-8000-8000-00000000beef"  # names partition 1, which holds no such redemption
        missing = await front.post(f"/v1/redemptions/{unknown}/reverse", json={"reason": "x"}, headers=AUTH)
        assert missing.status_code == 404 and missing.json()["code"] == "not_found", missing.text
        nowhere = await front.post("/v1/redemptions/ffffffff-0000-8000-8000-000000000001/reverse", json={"reason": "x"})
        assert nowhere.status_code == 401  # no key: refused before anything else
        nowhere = await front.post(
            "/v1/redemptions/ffffffff-0000-8000-8000-000000000001/reverse", json={"reason": "x"}, headers=AUTH
        )
        assert nowhere.status_code == 404, nowhere.text  # names no partition of the topic

        rest = await front.post(path, json={"reason": "the rest"}, headers=AUTH)  # no amount: all that is left
        assert (rest.status_code, rest.json()["amount"]) == (201, "3"), rest.text
        done = await front.get(f"/v1/redemptions/{redemption_id}", headers=AUTH)
        assert (done.json()["reversed_amount"], done.json()["status"]) == ("4", "FULLY_REVERSED"), done.text
        once_more = await front.post(path, json={"reason": "again"}, headers=AUTH)
        assert once_more.status_code == 409, once_more.text  # fully reversed: the embedded Conflict
        assert (await _balance(running, bob, asset_id))["available"] == "5"

    replayed = await verified_and_replayed(broker, tmp_path, running.partitions_dir, PARTITIONS, 1)
    for data_dir in (replayed, partition_data_dir(running.partitions_dir, 1)):
        async with open_engine(config=config_for(data_dir)) as engine:
            reversals = engine.redemptions.reversals(redemption_id)
            assert (reversals[0].id, reversals[0].amount) == (reversal_id, "1")
            assert [item.amount for item in reversals] == ["1", "3"]
            balances = await engine.balances(bob, None)
            assert [b.available for b in balances] == ["5"]


def test_a_reversal_record_names_its_redemption_and_its_new_id() -> None:
    """A reversal's record carries its body, the redemption and the new reversal's id, and only a reversal's
    record names a program (the applier's, from the redemption); anything else is a decode error."""
    decoder = msgspec.json.Decoder(ParticipantOperation)
    whole = {
        "operation": REVERSAL,
        "participant_id": "",
        "reversal": {"reason": "broken"},
        "redemption_id": "00000001-0000-8000-8000-000000000001",
        "reversal_id": "00000001-0000-8000-8000-000000000002",
    }
    assert decoder.decode(msgspec.json.encode(whole)).reversal.reason == "broken"  # type: ignore[union-attr]
    for missing in ("reversal", "redemption_id", "reversal_id"):
        with pytest.raises(msgspec.ValidationError):
            decoder.decode(msgspec.json.encode({k: v for k, v in whole.items() if k != missing}))
    hold = {"program_id": "p", "asset_id": "a", "amount": "1", "description": "d"}
    with pytest.raises(msgspec.ValidationError, match="program_id"):
        decoder.decode(
            msgspec.json.encode({"operation": "HOLD", "participant_id": "x", "balance": hold, "program_id": "p"})
        )


def test_the_hash_a_balance_operations_key_is_claimed_with_did_not_change() -> None:
    """Routing reversals added fields to the record; a balance operation's claim hash is still the one claims
    stored before (so a key claimed before an upgrade answers the same request after it, not a 409), and a
    reversal's hash leaves its new id out (the front names one each time it is sent)."""
    hold = BalanceOperation(program_id="x", asset_id="a", amount="1", description="d", idempotency_key="k")
    command = ParticipantOperation(operation="HOLD", participant_id="p1", balance=hold)
    assert operation_hash(command) == "c9f21bd03bfd5620664e3360d53b0b7a745dfd671d52c361c2b3b8580b7d2641"
    reversal = msgspec.json.decode(
        msgspec.json.encode(
            {
                "operation": REVERSAL,
                "participant_id": "",
                "reversal": {"reason": "r"},
                "redemption_id": "d",
                "reversal_id": "1",
            }
        ),
        type=ParticipantOperation,
    )
    sent_again = msgspec.structs.replace(reversal, reversal_id="2", participant_id="p", program_id="x")
    assert operation_hash(sent_again) == operation_hash(reversal)
    assert operation_hash(msgspec.structs.replace(reversal, redemption_id="e")) != operation_hash(reversal)
