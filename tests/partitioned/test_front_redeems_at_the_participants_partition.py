"""A points redemption through the front: produced to the participant's partition with an id of that partition
named by the front, applied there once (its idempotency key claimed across partitions like a balance operation's),
answered as the embedded route answers (201, 200 for the same key again, the refusal's own status), and found by
its id through the front's reads.

Real Tansu, the real front (Hypercorn on loopback), engine roles with their readers and idempotency claims on,
real LMDB; `scrip verify` on every store afterwards, and the partition replayed from offset 0.
"""

from __future__ import annotations

from pathlib import Path

from scrip_actor.engine import open_engine
from scrip_actor.partitioned import partition_data_dir
from scrip_actor.partitioned._claiming import claim_partition_for
from scrip_actor.partitioned._partition_ids import partition_of
from tests.partitioned.partition_setup import config_for, verified_and_replayed
from tests.partitioned.test_front_routes_reads_to_the_owning_partition import AUTH, PARTITIONS, _running
from tests.partitioned.test_front_runs_a_balance_operation_at_its_participants_partition import (
    _balance,
    _on,
    _participant_with_points,
)


async def test_a_redemption_runs_once_at_the_participants_partition(broker: str, tmp_path: Path) -> None:
    redemption_id = ""
    async with _running(broker, tmp_path) as (running, program_id):
        front = running.front
        asset_id = (await front.get(f"/v1/programs/{program_id}/assets", headers=AUTH)).json()["data"][0]["id"]
        alice = await _participant_with_points(running, program_id, _on(0, "alice"), 5)
        key = next(
            f"r{n}" for n in range(1000) if claim_partition_for("operations:" + program_id, f"r{n}", PARTITIONS) == 2
        )  # the key's claim lives on another partition than Alice's
        body = {"program_id": program_id, "asset_id": asset_id, "amount": "3", "description": "mug"}
        path = f"/v1/participants/{alice}/redemptions"

        created = await front.post(path, json={**body, "idempotency_key": key}, headers=AUTH)
        assert created.status_code == 201, created.text
        redemption_id = created.json()["id"]
        assert partition_of(redemption_id) == 0
        assert (created.json()["amount"], created.json()["status"]) == ("3", "COMPLETED")
        again = await front.post(path, json={**body, "idempotency_key": key}, headers=AUTH)
        assert (again.status_code, again.json()["id"]) == (200, redemption_id), again.text
        changed = await front.post(path, json={**body, "amount": "1", "idempotency_key": key}, headers=AUTH)
        assert changed.status_code == 409 and changed.json()["code"] == "idempotency_conflict", changed.text
        assert (await _balance(running, alice, asset_id))["available"] == "2"

        found = await front.get(f"/v1/redemptions/{redemption_id}", headers=AUTH)
        assert (found.status_code, found.json()["journal_entry_id"]) == (200, created.json()["journal_entry_id"])
        listed = await front.get(path, headers=AUTH)
        assert [item["id"] for item in listed.json()["data"]] == [redemption_id], listed.text
        entry = await front.get(f"/v1/journal-entries/{created.json()['journal_entry_id']}", headers=AUTH)
        assert entry.json()["action_type"] == "REDEMPTION", entry.text

        overdraft = await front.post(path, json={**body, "amount": "5"}, headers=AUTH)
        assert overdraft.status_code == 422 and overdraft.json()["code"] == "insufficient_balance", overdraft.text
        malformed = await front.post(path, json={**body, "amount": "lots"}, headers=AUTH)
        assert malformed.status_code == 400, malformed.text
        nowhere = await front.post("/v1/participants/ffffffff-0000-8000-8000-000000000001/redemptions", json=body)
        assert nowhere.status_code == 401  # no key: refused before anything else
        missing = await front.get("/v1/redemptions/ffffffff-0000-8000-8000-000000000001", headers=AUTH)
        assert missing.status_code == 404, missing.text
        assert (await _balance(running, alice, asset_id))["available"] == "2"

    replayed = await verified_and_replayed(broker, tmp_path, running.partitions_dir, PARTITIONS, 0)
    for data_dir in (replayed, partition_data_dir(running.partitions_dir, 0)):
        async with open_engine(config=config_for(data_dir)) as engine:
            redemption = engine.redemptions.get(redemption_id)
            assert (redemption.amount, redemption.participant_id) == ("3", alice)
            balances = await engine.balances(alice, None)
            assert [b.available for b in balances] == ["2"]
