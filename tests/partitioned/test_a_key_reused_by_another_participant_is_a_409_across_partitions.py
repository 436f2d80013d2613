"""An idempotency key reused with another participant's payload is a 409, not a second event, across partitions.

Real Tansu, engine roles (in this process, and one as a SIGKILLed process), real LMDB, 3 partitions. The key's
partition (``claim_partition_for``) claims it for the first payload; an event whose key lives elsewhere waits,
parked, for that partition's answer. Asserted:

* two participants on two partitions use one key: the first (in the key partition's order) is admitted, the other
  is refused with ``idempotency_conflict`` kept under its log position, naming the first; whether the key's
  partition is one of theirs or a third one;
* the same participant sending the same payload twice makes one event;
* 600 events of 20 participants with distinct keys, one partition's engine SIGKILLed while it parks and releases:
  every event is admitted exactly once, in the order produced per participant, and `scrip verify` passes.
"""

from __future__ import annotations

import signal
from pathlib import Path

import msgspec
import trio

from scrip_actor import open_engine
from scrip_actor.partitioned import _kafka, partition_data_dir
from scrip_actor.partitioned._claiming import claim_partition_for
from scrip_actor.partitioned._outcomes import log_outcome
from scrip_actor.partitioned._routing import KIND_TRANSFER, partition_for
from tests.partitioned.partition_setup import (
    applied_balances,
    assert_applied_in_order,
    config_for,
    log_end,
    produce,
    seed_partitions,
    settle,
    start_engine,
)

TOPIC = "events-claims"
PARTITIONS = 3


def _on(partition: int, prefix: str) -> str:
    return next(f"{prefix}{n}" for n in range(1000) if partition_for(f"{prefix}{n}", PARTITIONS) == partition)


def _key_on(program_id: str, partition: int, prefix: str) -> str:
    names = (f"{prefix}{n}" for n in range(1000))
    return next(key for key in names if claim_partition_for(program_id, key, PARTITIONS) == partition)


def _send(bootstrap: str, program_id: str, external_id: str, key: str, n: int = 0) -> int:
    producer = _kafka.RecordProducer(bootstrap)
    stored: list[int] = []
    event = {"program_id": program_id, "external_id": external_id, "idempotency_key": key, "event_data": {"n": n}}
    body = msgspec.json.encode(event)
    partition = partition_for(external_id, PARTITIONS)
    producer.produce(
        TOPIC, external_id.encode(), body, lambda _e, _p, offset: stored.append(offset), partition=partition
    )
    assert producer.flush() == 0
    return stored[0]


async def _outcome(partitions_dir: Path, partition: int, offset: int) -> dict | None:
    async with open_engine(config=config_for(partition_data_dir(partitions_dir, partition))) as engine:
        return log_outcome(engine, f"{TOPIC}/{partition}", offset)


async def test_a_reused_key_is_a_409_whichever_partition_owns_it(broker: str, tmp_path: Path) -> None:
    partitions_dir, program_id, asset_id = await seed_partitions(tmp_path, PARTITIONS)
    _kafka.create_topic(broker, TOPIC, PARTITIONS)
    alice, bob = _on(0, "alice"), _on(1, "bob")
    owned_by_alice = _key_on(program_id, 0, "k-alice-")  # the key's partition is the first user's own
    owned_by_third = _key_on(program_id, 2, "k-third-")  # a third partition owns it: both wait for it
    first_a = _send(broker, program_id, alice, owned_by_alice)
    await settle(broker, partitions_dir, TOPIC, PARTITIONS)  # alice's event claims the key first
    second_b = _send(broker, program_id, bob, owned_by_alice)
    _send(broker, program_id, alice, owned_by_third)
    await settle(broker, partitions_dir, TOPIC, PARTITIONS)  # partition 0 relays its claim first: alice wins
    third_b = _send(broker, program_id, bob, owned_by_third)
    _send(broker, program_id, alice, owned_by_third)  # the same payload again: a replay, not a second event
    await settle(broker, partitions_dir, TOPIC, PARTITIONS)

    applied, events = await applied_balances(partitions_dir, PARTITIONS, asset_id)  # `scrip verify` on each
    assert events == 2 and applied == {alice: 2}  # bob's two events were refused; alice's replay made nothing
    for offset in (second_b, third_b):
        refused = await _outcome(partitions_dir, 1, offset)
        assert refused is not None and refused["code"] == "idempotency_conflict", refused
    assert (await _outcome(partitions_dir, 1, second_b))["details"]["event_id"] == f"0@{first_a}"  # type: ignore[index]
    assert await _outcome(partitions_dir, 0, first_a) is None


async def test_every_event_is_admitted_once_in_order_across_a_kill(broker: str, tmp_path: Path) -> None:
    partitions_dir, program_id, asset_id = await seed_partitions(tmp_path, PARTITIONS)
    _kafka.create_topic(broker, TOPIC, PARTITIONS)
    counts, ends = await trio.to_thread.run_sync(produce, broker, program_id, list(range(600)), 20, PARTITIONS, TOPIC)
    victim = start_engine(broker, partitions_dir, 0, ends[0], TOPIC, scope="program")
    assert victim.stdout is not None
    victim.stdout.readline()  # READY
    await trio.sleep(0.4)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    victim.stdout.close()
    await settle(broker, partitions_dir, TOPIC, PARTITIONS)

    applied, events = await applied_balances(partitions_dir, PARTITIONS, asset_id)
    assert events == 600
    assert applied == dict(counts)
    assert await assert_applied_in_order(partitions_dir, PARTITIONS) == 600
    assert await trio.to_thread.run_sync(log_end, broker, TOPIC, 0) > ends[0]  # claims and answers went through it


def _send_transfer(bootstrap: str, program_id: str, asset_id: str, source: str, recipient: str, key: str) -> int:
    producer = _kafka.RecordProducer(bootstrap)
    stored: list[int] = []
    body = {
        "program_id": program_id,
        "asset_id": asset_id,
        "source_external_id": source,
        "recipients": [{"external_id": recipient, "amount": "1"}],
        "description": "gift",
        "idempotency_key": key,
    }
    partition = partition_for(source, PARTITIONS)
    producer.produce(
        TOPIC,
        source.encode(),
        msgspec.json.encode(body),
        lambda _e, _p, offset: stored.append(offset),
        partition=partition,
        kind=KIND_TRANSFER,
    )
    assert producer.flush() == 0
    return stored[0]


async def test_a_transfer_key_reused_by_another_source_is_a_409(broker: str, tmp_path: Path) -> None:
    partitions_dir, program_id, asset_id = await seed_partitions(tmp_path, PARTITIONS)
    _kafka.create_topic(broker, TOPIC, PARTITIONS)
    alice, bob, carol = _on(0, "alice"), _on(1, "bob"), _on(2, "carol")
    for name in (alice, bob, carol):
        for n in range(3):
            _send(broker, program_id, name, f"{name}-{n}", n)
    await settle(broker, partitions_dir, TOPIC, PARTITIONS)
    # Owned by a third partition: alice's transfer is parked for its claim, then sends its credit from the same
    # record (the claim request and the credit must not share a dedupe key at the destination).
    transfer_key = _key_on("operations:" + program_id, 2, "gift-")
    _send_transfer(broker, program_id, asset_id, alice, carol, transfer_key)
    await settle(broker, partitions_dir, TOPIC, PARTITIONS)
    reused = _send_transfer(broker, program_id, asset_id, bob, carol, transfer_key)  # another source: a 409
    _send_transfer(broker, program_id, asset_id, alice, carol, transfer_key)  # the same transfer again: a replay
    await settle(broker, partitions_dir, TOPIC, PARTITIONS)

    applied, _ = await applied_balances(partitions_dir, PARTITIONS, asset_id)
    assert applied == {alice: 3 - 1, bob: 3, carol: 3 + 1}
    refused = await _outcome(partitions_dir, 1, reused)
    assert refused is not None and refused["code"] == "idempotency_conflict", refused
