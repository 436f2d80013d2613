"""A transfer between partitions moves its value exactly once, across a SIGKILL of its origin and a re-relayed copy.

Real Tansu, real engine-role processes, real LMDB. Sources live on partition 0, recipients on partition 1 (and one
beside the sources, on 0). Transfers go to the sources' partition as ``scrip-kind: transfer`` records; partition 0's
engine is SIGKILLed while it applies and relays them, and restarted. Then a copy of an effect already delivered is
produced into partition 1 (what a relay that crashed between its produce and its bookkeeping does), with a bogus
amount, so applying it would show. One transfer names a recipient that does not exist (its credit comes back to
the source), one overdraws (refused, nothing moves, the refusal is kept), one idempotency key is sent twice.

Asserted: every balance equals the model's; the transit accounts of all partitions sum to zero (nothing left in
flight, nothing created); the copy was passed over; `scrip verify` passes on both stores.
"""

from __future__ import annotations

import random
import signal
from pathlib import Path

import msgspec
import trio

from scrip_actor import open_engine
from scrip_actor.engine import TransitCredit, transit_account
from scrip_actor.ledger import account_key
from scrip_actor.partitioned import _kafka, partition_data_dir, run_partition
from scrip_actor.partitioned._apply import log_outcome
from scrip_actor.partitioned._claiming import claim_partition_for
from scrip_actor.partitioned._outbox import Outbox, OutboxRecord
from scrip_actor.partitioned._routing import KIND_EFFECT, KIND_TRANSFER, partition_for
from tests.partitioned.partition_setup import (
    RecordLog,
    applied_balances,
    config_for,
    log_end,
    seed_partitions,
    settle,
    start_engine,
)

TOPIC = "events-transfers"
SOURCE_POINTS = 30
TRANSFERS_PER_SOURCE = 12


def _named(prefix: str, partition: int, count: int) -> list[str]:
    names = (f"{prefix}{n}" for n in range(1000))
    return [name for name in names if partition_for(name, 2) == partition][:count]


async def _run_until_end(bootstrap: str, partitions_dir: Path, partition: int, *, kill: bool = False) -> int:
    end = await trio.to_thread.run_sync(log_end, bootstrap, TOPIC, partition)
    process = start_engine(bootstrap, partitions_dir, partition, end, TOPIC, scope="program")
    if kill:
        assert process.stdout is not None
        process.stdout.readline()  # READY
        await trio.sleep(random.uniform(0.05, 0.3))
        process.send_signal(signal.SIGKILL)
        process.wait()
        process.stdout.close()
        process = start_engine(bootstrap, partitions_dir, partition, end, TOPIC, scope="program")
    out, _ = await trio.to_thread.run_sync(process.communicate)
    assert f"DONE {end}" in out, out
    return end


def _transfer(program_id: str, asset_id: str, source: str, recipients: dict[str, int], key: str | None = None) -> dict:
    body = {
        "program_id": program_id,
        "asset_id": asset_id,
        "source_external_id": source,
        "recipients": [{"external_id": name, "amount": str(amount)} for name, amount in recipients.items()],
        "description": "gift",
    }
    return body if key is None else {**body, "idempotency_key": key}


async def test_a_transfer_between_partitions_is_applied_once(broker: str, tmp_path: Path) -> None:
    partitions_dir, program_id, asset_id = await seed_partitions(tmp_path, 2)
    _kafka.create_topic(broker, TOPIC, 2)
    log = RecordLog(broker, TOPIC)
    sources, nearby = _named("source", 0, 5), _named("near", 0, 1)[0]
    recipients, ghost = _named("far", 1, 4), _named("ghost", 1, 1)[0]
    expected = {name: SOURCE_POINTS for name in sources} | {nearby: 1} | dict.fromkeys(recipients, 1)
    for name, points in list(expected.items()):  # the rule credits 1 per event
        for n in range(points):
            event = {"program_id": program_id, "external_id": name, "idempotency_key": f"{name}-{n}", "event_data": {}}
            log.send(name, event, partition_for(name, 2))
    # Every participant exists before the transfers are sent, as a client would see first: the order between two
    # participants' records is not kept (an event may wait for its key's claim while later records go on).
    await settle(broker, partitions_dir, TOPIC, 2)
    first_transfer_offset = await trio.to_thread.run_sync(log_end, broker, TOPIC, 0)
    for round_number in range(TRANSFERS_PER_SOURCE):
        for i, source in enumerate(sources):
            far = recipients[(i + round_number) % len(recipients)]
            log.send(source, _transfer(program_id, asset_id, source, {far: 1, nearby: 1}), 0, KIND_TRANSFER)
            expected[source] -= 2
            expected[far] += 1
            expected[nearby] += 1
    log.send(sources[0], _transfer(program_id, asset_id, sources[0], {recipients[0]: 1000}), 0, KIND_TRANSFER)
    overdraft_offset = log.stored[-1][1]
    log.send(sources[1], _transfer(program_id, asset_id, sources[1], {ghost: 5}), 0, KIND_TRANSFER)  # comes back
    for _ in range(2):  # one key, twice: applied once
        keyed = _transfer(program_id, asset_id, sources[2], {recipients[1]: 3}, key="once")
        log.send(sources[2], keyed, 0, KIND_TRANSFER)
    expected[sources[2]] -= 3
    expected[recipients[1]] += 3

    await _run_until_end(broker, partitions_dir, 0, kill=True)  # killed while applying and relaying
    await settle(broker, partitions_dir, TOPIC, 2)  # claims answered, events and transfers released, credits delivered
    bogus = TransitCredit(
        purpose="TRANSFER",
        program_id=program_id,
        asset_id=asset_id,
        external_id=recipients[0],
        amount_minor=999,
        from_partition=0,
        reference_id="copy",
        description="a re-relayed copy",
    )
    copy = OutboxRecord(
        origin_partition=0,
        origin_offset=first_transfer_offset,
        ordinal=0,
        destination_partition=1,
        payload=msgspec.msgpack.encode(bogus),
    )
    log.send(recipients[0], msgspec.msgpack.encode(copy), 1, KIND_EFFECT)
    await settle(broker, partitions_dir, TOPIC, 2)

    applied, _ = await applied_balances(partitions_dir, 2, asset_id)  # `scrip verify` passes on each store
    assert applied == expected
    in_transit = 0
    for partition in range(2):
        async with open_engine(config=config_for(partition_data_dir(partitions_dir, partition))) as engine:
            for other in range(2):
                key = account_key("SYSTEM", transit_account(other), asset_id).encode()
                in_transit += engine._store.get("accounts", key, int) or 0
            engine._store.open_side_database("outbox")
            with engine._store.env.begin() as txn:
                assert Outbox(engine._store.env).pending(txn) == [], "every effect was relayed"
            if partition == 0:
                refused = log_outcome(engine, f"{TOPIC}/0", overdraft_offset)
                assert refused is not None
                assert refused["code"] == "insufficient_balance", refused
    assert in_transit == 0, "value left in transit, or created on the way"


async def test_a_credit_waits_behind_its_recipients_parked_event(broker: str, tmp_path: Path) -> None:
    """The recipient's creating event is parked for its key's claim when the credit arrives: the credit waits
    behind it instead of finding nobody and going back."""
    partitions_dir, program_id, asset_id = await seed_partitions(tmp_path, 2)
    _kafka.create_topic(broker, TOPIC, 2)
    log = RecordLog(broker, TOPIC)
    source, recipient = _named("giver", 0, 1)[0], _named("taker", 1, 1)[0]
    keys_of_0 = (f"k{n}" for n in range(1000))
    key_owned_by_0 = next(key for key in keys_of_0 if claim_partition_for(program_id, key, 2) == 0)
    for n in range(5):
        event = {"program_id": program_id, "external_id": source, "idempotency_key": f"s{n}", "event_data": {}}
        log.send(source, event, 0)
    await settle(broker, partitions_dir, TOPIC, 2)
    first = {"program_id": program_id, "external_id": recipient, "idempotency_key": key_owned_by_0, "event_data": {}}
    log.send(recipient, first, 1)  # parked on 1 until 0 answers its claim
    log.send(source, _transfer(program_id, asset_id, source, {recipient: 3}), 0, KIND_TRANSFER)
    for partition in (1, 0, 1):  # 1 parks and asks; 0 sends the credit, then answers; 1 gets both, in that order
        end = await trio.to_thread.run_sync(log_end, broker, TOPIC, partition)
        config = config_for(partition_data_dir(partitions_dir, partition))
        await run_partition(config, broker, TOPIC, partition, until_offset=end)
    await settle(broker, partitions_dir, TOPIC, 2)
    applied, _ = await applied_balances(partitions_dir, 2, asset_id)
    assert applied == {source: 5 - 3, recipient: 1 + 3}
