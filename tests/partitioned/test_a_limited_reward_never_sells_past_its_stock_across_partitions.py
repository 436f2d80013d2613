"""A catalog reward's ``max_total`` holds across partitions: every unit sold on a partition other than the reward's
owner is reserved at the owner first, a refused redemption gives its reserved units back, and so does a reversal.

Real Tansu, the real front (Hypercorn on loopback), three engine roles with their readers and idempotency claims on,
real LMDB; `scrip verify` on every store afterwards, and both the owner and an asker replayed from offset 0 count
the same.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio

from scrip_actor.engine import open_engine
from scrip_actor.partitioned import partition_data_dir
from scrip_actor.partitioned._reward_stock import stock_owner
from scrip_actor.store import unbe64
from tests.partitioned.partition_setup import config_for, verified_and_replayed
from tests.partitioned.test_front_redeems_catalog_rewards_and_adds_up_their_counts import _running
from tests.partitioned.test_front_routes_reads_to_the_owning_partition import AUTH, PARTITIONS
from tests.partitioned.test_front_runs_a_balance_operation_at_its_participants_partition import (
    _balance,
    _on,
    _participant_with_points,
)

_STOCK = 10  # the seeded "limited" reward's max_total (1 point a unit)


async def _redeem(running: Any, program_id: str, reward_id: str, participant_id: str, **extra: Any) -> Any:
    body = {"program_id": program_id, "reward_id": reward_id, **extra}
    return await running.front.post(f"/v1/participants/{participant_id}/redemptions/items", json=body, headers=AUTH)


async def _count(running: Any, program_id: str, reward_id: str) -> int:
    answer = await running.front.get(f"/v1/programs/{program_id}/rewards/{reward_id}", headers=AUTH)
    assert answer.status_code == 200, answer.text
    return int(answer.json()["redeemed_count"])


async def test_a_limited_reward_sells_exactly_its_stock_from_every_partition(broker: str, tmp_path: Path) -> None:
    async with _running(broker, tmp_path) as (running, program_id, asset_id):
        listed = (await running.front.get(f"/v1/programs/{program_id}/rewards", headers=AUTH)).json()["data"]
        limited = next(reward["id"] for reward in listed if reward["name"] == "limited")
        owner = stock_owner(limited, PARTITIONS)
        asker = (owner + 1) % PARTITIONS
        people = [
            await _participant_with_points(running, program_id, _on(partition, f"p{partition}x{n}-"), 4)
            for partition in range(PARTITIONS)
            for n in range(2)
        ]  # two on each partition, 4 points each: 24 units wanted of 10

        answers: dict[str, Any] = {}  # by idempotency key

        async def redeem(participant_id: str, number: int) -> None:
            key = f"{participant_id}-{number}"
            quantity = 2 if number == 0 else 1
            answers[key] = await _redeem(
                running, program_id, limited, participant_id, quantity=quantity, idempotency_key=key
            )

        with trio.fail_after(60):
            async with trio.open_nursery() as nursery:
                for participant_id in people:
                    for number in range(3):
                        nursery.start_soon(redeem, participant_id, number)
        sold = {key: answer.json() for key, answer in answers.items() if answer.status_code == 201}
        refused = [answer for answer in answers.values() if answer.status_code != 201]
        assert sum(redemption["quantity"] for redemption in sold.values()) == _STOCK, [a.text for a in refused]
        assert all(answer.status_code == 409 for answer in refused), [answer.text for answer in refused]
        assert {answer.json()["details"]["reason"] for answer in refused} == {"max_total_reached"}
        assert await _count(running, program_id, limited) == _STOCK

        # Sold out: a sold key sent again still answers its first answer (its reservation, if any, goes back).
        key, first = next(iter(sold.items()))
        again = await _redeem(
            running, program_id, limited, first["participant_id"], quantity=first["quantity"], idempotency_key=key
        )
        assert (again.status_code, again.json()["id"]) == (200, first["id"]), again.text

        # A reversal on an asking partition gives a unit back to the owner's book: one more sells, then no more.
        on_asker = next(r for r in sold.values() if people.index(r["participant_id"]) // 2 == asker)
        reversed_ = await running.front.post(
            f"/v1/redemptions/{on_asker['id']}/reverse", json={"reason": "returned", "quantity": 1}, headers=AUTH
        )
        assert reversed_.status_code == 201, reversed_.text
        assert await _count(running, program_id, limited) == _STOCK - 1

        # A redemption granted its unit but refused after (no points) gives the unit back too.
        broke = await _participant_with_points(running, program_id, _on(asker, "broke"), 1)
        spent = await running.front.post(
            f"/v1/participants/{broke}/balances/adjust",
            json={"program_id": program_id, "asset_id": asset_id, "type": "DEBIT", "amount": "1", "description": "-"},
            headers=AUTH,
        )
        assert spent.status_code == 200, spent.text
        short = await _redeem(running, program_id, limited, broke)
        assert short.status_code == 422, short.text
        third = (asker + 1) % PARTITIONS
        taker = await _participant_with_points(running, program_id, _on(third, "taker"), 2)
        last = await _redeem(running, program_id, limited, taker)
        assert last.status_code == 201, last.text
        over = await _redeem(running, program_id, limited, taker)
        assert over.status_code == 409, over.text
        assert over.json()["details"]["reason"] == "max_total_reached", over.text
        assert await _count(running, program_id, limited) == _STOCK
        assert (await _balance(running, taker, asset_id))["available"] == "1"

    counts: dict[int, int] = {}
    for partition in range(PARTITIONS):
        async with open_engine(config=config_for(partition_data_dir(running.partitions_dir, partition))) as engine:
            counts[partition] = engine.rewards.get(program_id, limited).redeemed_count
            if partition == owner:
                engine._store.open_side_database("leases")
                with engine._store.env.begin() as txn:
                    book = txn.get(f"stock\0{limited}".encode(), db=engine._store.dbs["leases"])
                assert book is not None
                assert unbe64(book) == _STOCK  # every unit sold, none in flight, none stranded
    assert sum(counts.values()) == _STOCK
    for partition in (owner, asker):
        replayed = await verified_and_replayed(broker, tmp_path, running.partitions_dir, PARTITIONS, partition)
        async with open_engine(config=config_for(replayed)) as engine:
            assert engine.rewards.get(program_id, limited).redeemed_count == counts[partition]
