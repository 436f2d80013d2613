"""A PREFUNDED wallet drained from every partition at once is never overspent, and nothing of it is stranded.

Real Tansu, real LMDB, the engine role's own code (scrip_actor/partitioned/_wallet_leases.py, _wallet_owner.py).
Three partitions share one program wallet funded with 500 through the front (its owner's log); a rule credits 7
per event, and 150 events (1,050 wanted) arrive for participants on all three partitions. Leases are granted, run short,
and the endgame recalls them.

The same again with engine processes SIGKILLed mid-run, the owner's twice, before the partitions settle.

Asserted: what participants received is exactly 7 per COMPLETED event and never more than the funding; the
funding is all accounted for (participants + every partition's lease + transit == 500, transit 0); what is
left is less than one credit (no lease stranded in a quiet partition while a credit failed); every FAILED event
failed for the wallet; `scrip verify` passes on every store.
"""

from __future__ import annotations

import random
import shutil
import signal
from pathlib import Path

import httpx
import msgspec
import pytest
import trio

from scrip_actor import open_engine
from scrip_actor.config import Config, EngineSettings, ServerSettings
from scrip_actor.engine import Engine, transit_account
from scrip_actor.http.auth import ApiKeys
from scrip_actor.ledger import account_key
from scrip_actor.model import AssetCreate, CreditAction, Event, ProgramCreate, RuleCreate
from scrip_actor.partitioned import _kafka, partition_data_dir
from scrip_actor.partitioned._apply import PartitionApplier
from scrip_actor.partitioned._claiming import claim_partition_for
from scrip_actor.partitioned._front import open_event_log, serve_front
from scrip_actor.partitioned._routing import KIND_TRANSFER, partition_for
from scrip_actor.partitioned._wallet_leases import hold_until_applier, wait_quiet
from scrip_actor.partitioned._wallet_messages import wallet_owner
from tests.partitioned.partition_setup import applied_balances, config_for, log_end, settle, start_engine

TOPIC = "events-wallets"
PARTITIONS = 3
FUNDING = 500
CREDIT = 7
EVENTS = 150
PARTICIPANTS = 30
KEY = "wallet-test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}


async def _template(tmp_path: Path, *, funded_minor: int = 0) -> tuple[Path, str, str]:
    template = tmp_path / "template"
    async with open_engine(config=config_for(template)) as engine:
        program = await engine.create_program(ProgramCreate(name="shared wallet"))
        asset = await engine.create_asset(
            AssetCreate(
                program_id=program.id, name="Points", symbol="PTS", inventory_mode="SIMPLE",
                issuance_policy="PREFUNDED", scale=0,
            )
        )  # fmt: skip
        await engine.create_rule(
            RuleCreate(
                program_id=program.id, name="seven", condition="true",
                actions=[CreditAction(asset_id=asset.id, amount=str(CREDIT))],
            )
        )  # fmt: skip
        if funded_minor:
            await engine.fund(program.id, asset.id, str(funded_minor))
    return template, program.id, asset.id


def _produce(bootstrap: str, records: list[tuple[str, int, bytes, str | None]]) -> None:
    producer = _kafka.RecordProducer(bootstrap)
    errors: list[str] = []

    def on_acked(error: str | None, _partition: int, _offset: int) -> None:
        if error is not None:
            errors.append(error)

    for key, partition, value, kind in records:
        producer.produce(TOPIC, key.encode(), value, on_acked, partition=partition, kind=kind)
    assert producer.flush() == 0
    assert errors == []


async def _fund_through_the_front(bootstrap: str, program_id: str, asset_id: str, funding: int = FUNDING) -> None:
    """``POST /v1/programs/{id}/assets/{asset_id}/fund`` on the real front: 202 once stored at the owner."""
    owner = wallet_owner(program_id, asset_id, PARTITIONS)
    path = f"/v1/programs/{program_id}/assets/{asset_id}/fund"
    loopback = Config(server=ServerSettings(host="127.0.0.1", port=0))
    async with open_event_log(bootstrap, TOPIC, PARTITIONS) as log, trio.open_nursery() as nursery:
        port = await nursery.start(serve_front, log, loopback, ApiKeys.of(KEY))
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            refused = await client.post(path, json={"amount": "-5"}, headers=AUTH)
            assert refused.status_code == 400, refused.text
            assert (await client.post(path, json={"amount": "1"})).status_code == 401
            accepted = await client.post(path, json={"amount": str(funding), "description": "launch"}, headers=AUTH)
            assert accepted.status_code == 202, accepted.text
            assert accepted.json()["log"]["partition"] == owner
        nursery.cancel_scope.cancel()


async def _all_events(engine: Engine) -> list[Event]:
    events: list[Event] = []
    cursor = None
    while True:
        page = await engine.list_events(limit=200, cursor=cursor)
        events += page.data
        if not page.has_more:
            return events
        cursor = page.next_cursor


async def _run_and_kill(bootstrap: str, partitions_dir: Path, partition: int, delay_s: float) -> None:
    """One engine process for ``partition`` up to its log's end, SIGKILLed ``delay_s`` after it is READY."""
    end = await trio.to_thread.run_sync(log_end, bootstrap, TOPIC, partition)
    process = start_engine(bootstrap, partitions_dir, partition, end, TOPIC, scope="program")
    assert process.stdout is not None
    await trio.to_thread.run_sync(process.stdout.readline)  # READY
    await trio.sleep(delay_s)
    process.send_signal(signal.SIGKILL)
    await trio.to_thread.run_sync(process.wait)
    process.stdout.close()


# The kill run asserts all the calm one does; the calm one (~15 s) runs with --run-slow (make test-slow).
@pytest.mark.parametrize(
    "kills", [pytest.param(False, marks=pytest.mark.slow), True], ids=["calm", "owner-and-asker-killed"]
)
async def test_a_wallet_drained_from_every_partition_is_never_overspent(
    broker: str, tmp_path: Path, kills: bool
) -> None:
    template, program_id, asset_id = await _template(tmp_path)
    partitions_dir = tmp_path / "partitions"
    for partition in range(PARTITIONS):
        shutil.copytree(template, partition_data_dir(partitions_dir, partition))
    _kafka.create_topic(broker, TOPIC, PARTITIONS)
    await _fund_through_the_front(broker, program_id, asset_id)
    names = [f"member{n}" for n in range(PARTICIPANTS)]
    assert {partition_for(name, PARTITIONS) for name in names} == set(range(PARTITIONS))
    records: list[tuple[str, int, bytes, str | None]] = []
    for n in range(EVENTS):
        name = names[n % PARTICIPANTS]
        event = {"program_id": program_id, "external_id": name, "idempotency_key": f"buy-{n}", "event_data": {}}
        records.append((name, partition_for(name, PARTITIONS), msgspec.json.encode(event), None))
    await trio.to_thread.run_sync(_produce, broker, records)

    if kills:  # SIGKILL the owner and then an asker while they ask, grant, hold and recall
        owner = wallet_owner(program_id, asset_id, PARTITIONS)
        for partition in [(owner + 1) % PARTITIONS, owner, (owner + 2) % PARTITIONS, owner, (owner + 1) % PARTITIONS]:
            await _run_and_kill(broker, partitions_dir, partition, random.uniform(0.05, 0.4))
    await settle(broker, partitions_dir, TOPIC, PARTITIONS, rounds_max=60)

    balances, events_stored = await applied_balances(partitions_dir, PARTITIONS, asset_id)  # verify on each store
    assert events_stored == EVENTS
    credited = sum(balances.values())
    leases = in_transit = completed = 0
    for partition in range(PARTITIONS):
        async with open_engine(config=config_for(partition_data_dir(partitions_dir, partition))) as engine:
            accounts = engine._world.accounts
            leases += accounts.get(account_key("PROGRAM", program_id, asset_id), 0)
            in_transit += sum(
                accounts.get(account_key("SYSTEM", transit_account(other), asset_id), 0) for other in range(PARTITIONS)
            )
            for event in await _all_events(engine):
                assert event.status in ("COMPLETED", "FAILED"), event
                if event.status == "COMPLETED":
                    completed += 1
                else:
                    assert "program wallet" in (event.error_message or ""), event.error_message
    assert credited == completed * CREDIT, "a credit was applied without its event completing, or twice"
    assert credited <= FUNDING, "overspent"
    assert in_transit == 0, "value left in transit, or created on the way"
    assert credited + leases == FUNDING, "funding lost or created"
    assert leases < CREDIT, f"{leases} left in leases while credits failed: stranded"


async def test_a_partition_copied_from_a_funded_template_is_refused(tmp_path: Path) -> None:
    """The template's funding would count once per copy: only the wallet's owner may hold it."""
    template, program_id, asset_id = await _template(tmp_path, funded_minor=FUNDING)
    partitions = 4
    owner = wallet_owner(program_id, asset_id, partitions)
    other = (owner + 1) % partitions
    for partition in (owner, other):
        shutil.copytree(template, partition_data_dir(tmp_path / "partitions", partition))
    config = config_for(partition_data_dir(tmp_path / "partitions", other))
    async with open_engine(config=config) as engine:
        with pytest.raises(ValueError, match=f"partition {owner} owns"):
            PartitionApplier(engine, TOPIC, other, partitions, f"{TOPIC}/{other}")
    async with open_engine(config=config_for(partition_data_dir(tmp_path / "partitions", owner))) as engine:
        PartitionApplier(engine, TOPIC, owner, partitions, f"{TOPIC}/{owner}")  # the owner keeps it


async def _seeded(broker: str, tmp_path: Path, funding: int) -> tuple[Path, str, str]:
    template, program_id, asset_id = await _template(tmp_path)
    partitions_dir = tmp_path / "partitions"
    for partition in range(PARTITIONS):
        shutil.copytree(template, partition_data_dir(partitions_dir, partition))
    _kafka.create_topic(broker, TOPIC, PARTITIONS)
    await _fund_through_the_front(broker, program_id, asset_id, funding)
    return partitions_dir, program_id, asset_id


def _event(program_id: str, name: str, key: str) -> tuple[str, int, bytes, str | None]:
    body = {"program_id": program_id, "external_id": name, "idempotency_key": key, "event_data": {}}
    return (name, partition_for(name, PARTITIONS), msgspec.json.encode(body), None)


async def test_the_owners_own_short_credit_is_served_from_the_other_leases(broker: str, tmp_path: Path) -> None:
    """The owner's remainder covers its credit's shortfall but not the credit (the rest sits in another
    partition's lease): it must open the endgame, not ask itself again until it fails. 95 funded, 11 credits of
    7 wanted: one process completes all of them."""
    partitions_dir, program_id, asset_id = await _seeded(broker, tmp_path, 95)
    owner = wallet_owner(program_id, asset_id, PARTITIONS)
    names = [f"m{n}" for n in range(200)]
    other = next(name for name in names if partition_for(name, PARTITIONS) != owner)
    mine = next(name for name in names if partition_for(name, PARTITIONS) == owner)
    await trio.to_thread.run_sync(_produce, broker, [_event(program_id, other, "k0")])
    await settle(broker, partitions_dir, TOPIC, PARTITIONS, rounds_max=20)  # a lease of 14 out there, 7 spent
    await trio.to_thread.run_sync(_produce, broker, [_event(program_id, mine, f"k{n}") for n in range(1, 11)])
    await settle(broker, partitions_dir, TOPIC, PARTITIONS, rounds_max=40)
    balances, _ = await applied_balances(partitions_dir, PARTITIONS, asset_id)
    assert balances == {other: CREDIT, mine: 10 * CREDIT}


async def test_a_transfer_returned_to_a_held_participant_waits_behind_it(broker: str, tmp_path: Path) -> None:
    """A transfer's value comes back (its recipient does not exist) while its source's step is held for the
    wallet: applied at once, the RETURN would wait in the held mailbox and stop the partition for good."""
    partitions_dir, program_id, asset_id = await _seeded(broker, tmp_path, 14 * 6 + 1)
    names = [f"m{n}" for n in range(200)]
    source = names[0]
    ghost = next(name for name in names if partition_for(name, PARTITIONS) != partition_for(source, PARTITIONS))
    await trio.to_thread.run_sync(_produce, broker, [_event(program_id, source, "k0")])
    await settle(broker, partitions_dir, TOPIC, PARTITIONS, rounds_max=20)
    transfer = {
        "program_id": program_id, "asset_id": asset_id, "source_external_id": source, "description": "to nobody",
        "recipients": [{"external_id": ghost, "amount": str(CREDIT)}], "idempotency_key": "t1",
    }  # fmt: skip
    records = [_event(program_id, source, f"k{n}") for n in range(1, 3)]
    records.append((source, partition_for(source, PARTITIONS), msgspec.json.encode(transfer), KIND_TRANSFER))
    records += [_event(program_id, source, f"k{n}") for n in range(3, 8)]
    await trio.to_thread.run_sync(_produce, broker, records)
    with trio.fail_after(120):
        await settle(broker, partitions_dir, TOPIC, PARTITIONS, rounds_max=60)
    balances, _ = await applied_balances(partitions_dir, PARTITIONS, asset_id)  # verify on every store
    assert balances == {source: 8 * CREDIT}, "the transfer came back, every credit was applied once"


async def test_held_credits_filling_the_in_flight_bound_fail_rather_than_stop_the_partition(tmp_path: Path) -> None:
    """No broker: the applier is fed records as the engine role reads them, on a real store with an in-flight
    bound of 2 and an empty lease. Both admitted credits are held (their asks go out); the third record is
    overloaded, and the answers that would resume the held ones are later records: the held credits fail, as on
    one process, and the records after them are applied."""
    template, program_id, asset_id = await _template(tmp_path)
    partitions = 2
    here = (wallet_owner(program_id, asset_id, partitions) + 1) % partitions
    data_dir = partition_data_dir(tmp_path / "partitions", here)
    shutil.copytree(template, data_dir)
    names = (f"p{n}" for n in range(10_000))
    people = [name for name in names if partition_for(name, partitions) == here][:4]
    keys = (f"k{n}" for n in range(10_000))
    owned_here = [key for key in keys if claim_partition_for(program_id, key, partitions) == here][:4]
    records = [
        (offset, None, msgspec.json.encode({"program_id": program_id, "external_id": name, "idempotency_key": key,
                                            "event_data": {}}), None)
        for offset, (name, key) in enumerate(zip(people, owned_here, strict=True))
    ]  # fmt: skip
    config = msgspec.structs.replace(config_for(data_dir), engine=EngineSettings(inflight_events_max=2))
    async with open_engine(config=config) as engine:
        hold_until_applier(engine, here, partitions)
        applier = PartitionApplier(engine, TOPIC, here, partitions, f"{TOPIC}/{here}")
        pending = records
        for _ in range(50):  # what the engine role does: read again from the overloaded record, a little later
            retry_at = await applier.apply(pending)
            if retry_at is None:
                break
            pending = [record for record in records if record[0] >= retry_at]
            await trio.sleep(0.05)
        else:
            raise AssertionError("the partition stayed stuck behind its held credits")
        await wait_quiet(engine)
        events = await _all_events(engine)
    assert len(events) == 4
    failed = [event for event in events if event.status == "FAILED"]
    assert len(failed) >= 2, [event.status for event in events]
    assert all("program wallet" in (event.error_message or "") for event in failed)
