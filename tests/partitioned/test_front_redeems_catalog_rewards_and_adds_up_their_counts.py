"""Catalog redemptions through the front: produced to the participant's partition with a redemption id of that
partition, applied there once (the key claimed across partitions), the reward's per-participant limit held there,
and the reward read through the front with its redeemed count added up over the partitions. (A reward with a
``max_total``: test_a_limited_reward_never_sells_past_its_stock_across_partitions.py.)

Real Tansu, the real front (Hypercorn on loopback), engine roles with their readers and idempotency claims on,
real LMDB; `scrip verify` on every store afterwards, and the partition replayed from offset 0 counts the same.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from scrip_actor.engine import open_engine
from scrip_actor.http.errors import PartitionsDisagree
from scrip_actor.partitioned import _kafka, partition_data_dir
from scrip_actor.partitioned._claiming import claim_partition_for
from scrip_actor.partitioned._front_rewards import _merged
from scrip_actor.partitioned._partition_ids import partition_of
from tests.partitioned.front_setup import Running, front_with_readers
from tests.partitioned.partition_setup import TOPIC, config_for, seed_partitions, verified_and_replayed
from tests.partitioned.test_front_routes_reads_to_the_owning_partition import AUTH, KEY, PARTITIONS
from tests.partitioned.test_front_runs_a_balance_operation_at_its_participants_partition import (
    _balance,
    _on,
    _participant_with_points,
)


@asynccontextmanager
async def _running(broker: str, tmp_path: Path) -> AsyncIterator[tuple[Running, str, str]]:
    partitions_dir, program_id, asset_id = await seed_partitions(tmp_path, PARTITIONS, rewards=True)
    _kafka.create_topic(broker, TOPIC, PARTITIONS)
    async with front_with_readers(broker, partitions_dir, PARTITIONS, KEY) as running:
        yield running, program_id, asset_id


async def test_catalog_redemptions_run_at_the_participants_partition(broker: str, tmp_path: Path) -> None:
    alice = mug = ""
    async with _running(broker, tmp_path) as (running, program_id, asset_id):
        front = running.front
        rewards = f"/v1/programs/{program_id}/rewards"
        listed = await front.get(rewards, headers=AUTH)
        assert listed.status_code == 200, listed.text
        by_name = {reward["name"]: reward for reward in listed.json()["data"]}
        mug, limited = by_name["mug"]["id"], by_name["limited"]["id"]
        alice = await _participant_with_points(running, program_id, _on(0, "alice"), 10)
        bob = await _participant_with_points(running, program_id, _on(1, "bob"), 10)
        key = next(
            f"i{n}" for n in range(1000) if claim_partition_for("operations:" + program_id, f"i{n}", PARTITIONS) == 2
        )  # the key's claim lives on another partition than Alice's
        body = {"program_id": program_id, "reward_id": mug, "quantity": 2, "idempotency_key": key}
        items = f"/v1/participants/{alice}/redemptions/items"

        created = await front.post(items, json=body, headers=AUTH)
        assert created.status_code == 201, created.text
        redemption = created.json()
        assert partition_of(redemption["id"]) == 0
        assert (redemption["amount"], redemption["quantity"], redemption["reward_catalog_item_id"]) == ("4", 2, mug)
        again = await front.post(items, json=body, headers=AUTH)
        assert (again.status_code, again.json()["id"]) == (200, redemption["id"]), again.text
        changed = await front.post(items, json={**body, "quantity": 1}, headers=AUTH)
        assert changed.status_code == 409 and changed.json()["code"] == "idempotency_conflict", changed.text
        bob_body = {**body, "quantity": 1, "idempotency_key": None}
        bobs = await front.post(f"/v1/participants/{bob}/redemptions/items", json=bob_body, headers=AUTH)
        assert bobs.status_code == 201 and partition_of(bobs.json()["id"]) == 1, bobs.text
        over = await front.post(items, json={"program_id": program_id, "reward_id": mug, "quantity": 2}, headers=AUTH)
        assert over.status_code == 409 and over.json()["details"]["reason"] == "max_per_participant_reached", over.text

        one = await front.get(f"{rewards}/{mug}", headers=AUTH)
        assert (one.status_code, one.json()["redeemed_count"]) == (200, 3), one.text  # 2 on partition 0, 1 on 1
        counts = {
            reward["name"]: reward["redeemed_count"]
            for reward in (await front.get(rewards, headers=AUTH)).json()["data"]
        }
        assert counts == {"mug": 3, "limited": 0}
        stocked = await front.post(items, json={"program_id": program_id, "reward_id": limited}, headers=AUTH)
        assert stocked.status_code == 201, stocked.text  # its unit reserved at the reward's owner partition first
        assert (await front.get(f"{rewards}/{limited}", headers=AUTH)).json()["redeemed_count"] == 1
        unknown = await front.post(items, json={"program_id": program_id, "reward_id": "nope"}, headers=AUTH)
        assert unknown.status_code == 404, unknown.text
        malformed = await front.post(
            items, json={"program_id": program_id, "reward_id": mug, "quantity": 0}, headers=AUTH
        )
        assert malformed.status_code == 400, malformed.text
        missing = await front.get(f"{rewards}/nope", headers=AUTH)
        assert missing.status_code == 404, missing.text
        bad_query = await front.get(rewards, params={"limit": "0"}, headers=AUTH)
        assert bad_query.status_code == 400, bad_query.text

        reversal = await front.post(
            f"/v1/redemptions/{redemption['id']}/reverse", json={"reason": "chipped", "quantity": 1}, headers=AUTH
        )
        assert (reversal.status_code, reversal.json()["amount"]) == (201, "2"), reversal.text
        assert (await front.get(f"{rewards}/{mug}", headers=AUTH)).json()["redeemed_count"] == 2
        assert (await _balance(running, alice, asset_id))["available"] == "7"  # 10 - 4 - 1 + 2
        assert (await _balance(running, bob, asset_id))["available"] == "8"

    replayed = await verified_and_replayed(broker, tmp_path, running.partitions_dir, PARTITIONS, 0)
    for data_dir in (replayed, partition_data_dir(running.partitions_dir, 0)):
        async with open_engine(config=config_for(data_dir)) as engine:
            assert engine.rewards.get(program_id, mug).redeemed_count == 1  # Alice's 2, one given back
            assert [b.available for b in await engine.balances(alice, None)] == ["7"]


def test_a_reward_merges_its_counts_and_refuses_a_catalog_that_differs() -> None:
    """Counts add up and the latest update wins (times compared as times, not text); any other field that differs
    between partitions is a 502 naming it, never a guess."""
    base = {"id": "r", "name": "mug", "status": "ACTIVE", "redeemed_count": 1, "updated_at": "2026-12-04T10:00:00.5Z"}
    later = {**base, "redeemed_count": 2, "updated_at": "2026-12-04T10:00:01Z"}
    merged = _merged([base, later, {**base, "redeemed_count": 0}])
    assert (merged["redeemed_count"], merged["updated_at"]) == (3, "2026-12-04T10:00:01Z")
    with pytest.raises(PartitionsDisagree) as refused:
        _merged([base, {**base, "status": "ARCHIVED"}])
    assert refused.value.details["field"] == "reward r status"
    with pytest.raises(PartitionsDisagree):
        _merged([base, {**base, "redeemed_count": -1}])
