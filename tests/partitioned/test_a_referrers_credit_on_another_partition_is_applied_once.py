"""A rule's credit to a participant of another partition (a referrer's) reaches it once, through the outbox.

Real Tansu, real LMDB, an engine-role process SIGKILLed while it processes the referrals. The newcomers live on
partition 0; every referrer they name lives on partition 1: one that exists, several that do not yet (the program
creates unknown participants, so partition 1 creates them, with ids that name it), and one that is SUSPENDED
there (its credits come back to the issuance on partition 0). One referrer lives on partition 0 beside its
newcomer (the local path, unchanged), and one event asks for a COUNTER on a referrer of partition 1, which only
a CREDIT can reach: that event FAILS, saying why.

Asserted: every balance equals the model's; a referrer's lot keeps the rule's expiry; its entry on partition 1
names the rule, the event on partition 0 and the origin's entry; each credit sent back is one CREDIT_RETURN
entry; the transit accounts of all partitions sum to zero and the issuance accounts to minus what participants
hold (no value lost or made on the way); `scrip verify` passes on both stores, its budget count included.
"""

from __future__ import annotations

import random
import shutil
import signal
from datetime import timedelta
from pathlib import Path

import trio

from scrip_actor import AssetCreate, CounterAction, CreditAction, ProgramCreate, RuleCreate, Target, open_engine
from scrip_actor.engine import transit_account
from scrip_actor.ledger import SYSTEM_ISSUANCE, account_key
from scrip_actor.partitioned import _kafka, partition_data_dir
from scrip_actor.partitioned._routing import partition_for
from tests.partitioned.partition_setup import RecordLog, applied_balances, config_for, log_end, settle, start_engine

TOPIC = "events-referrals"
PARTITIONS = 2
REFERRALS = 24
REFERRER_CREDIT, NEWCOMER_CREDIT = 25, 5


def _named(prefix: str, partition: int, count: int) -> list[str]:
    names = (f"{prefix}{n}" for n in range(1000))
    return [name for name in names if partition_for(name, PARTITIONS) == partition][:count]


async def _seeded(tmp_path: Path) -> tuple[Path, str, str, str]:
    template = tmp_path / "template"
    async with open_engine(config=config_for(template)) as engine:
        program = await engine.create_program(ProgramCreate(name="referrals"))
        asset = await engine.create_asset(
            AssetCreate(
                program_id=program.id, name="Points", symbol="PTS", inventory_mode="LOT",
                issuance_policy="UNLIMITED", scale=0,
            )
        )  # fmt: skip
        referrer = Target(external_id="event.referrer_id")
        rule = await engine.create_rule(
            RuleCreate(
                program_id=program.id, name="referral", condition="has(event.referrer_id)",
                actions=[
                    CreditAction(asset_id=asset.id, amount=str(REFERRER_CREDIT), expires_at="720h", target=referrer),
                    CreditAction(asset_id=asset.id, amount=str(NEWCOMER_CREDIT)),
                ],
            )
        )  # fmt: skip
        counted = Target(external_id="event.count_for")
        await engine.create_rule(
            RuleCreate(
                program_id=program.id, name="count", condition="has(event.count_for)",
                actions=[CounterAction(key="referrals", value="1", target=counted)],
            )
        )  # fmt: skip
    partitions_dir = tmp_path / "partitions"
    for partition in range(PARTITIONS):
        shutil.copytree(template, partition_data_dir(partitions_dir, partition))
    return partitions_dir, program.id, asset.id, rule.id


def _event(program_id: str, external_id: str, key: str, data: dict[str, str]) -> dict:
    return {"program_id": program_id, "external_id": external_id, "idempotency_key": key, "event_data": data}


async def _suspend(partitions_dir: Path, external_id: str) -> None:
    async with open_engine(config=config_for(partition_data_dir(partitions_dir, 1))) as engine:
        participant = await engine.get_participant_by_external_id(external_id)
        await engine.set_participant_status(participant.id, "SUSPENDED")


async def _kill_mid_run(broker: str, partitions_dir: Path) -> None:
    """Partition 0's engine, SIGKILLed while it processes and relays (``settle`` finishes the work after it)."""
    end = await trio.to_thread.run_sync(log_end, broker, TOPIC, 0)
    process = start_engine(broker, partitions_dir, 0, end, TOPIC, scope="program")
    assert process.stdout is not None
    process.stdout.readline()  # READY
    await trio.sleep(random.uniform(0.05, 0.3))
    process.send_signal(signal.SIGKILL)
    process.wait()
    process.stdout.close()


async def test_a_referrers_credit_on_another_partition_is_applied_once(broker: str, tmp_path: Path) -> None:
    partitions_dir, program_id, asset_id, rule_id = await _seeded(tmp_path)
    _kafka.create_topic(broker, TOPIC, PARTITIONS)
    log = RecordLog(broker, TOPIC)
    newcomers, (near, counted_by) = _named("new", 0, REFERRALS + 1), _named("near", 0, 2)
    friend, sleeper = _named("friend", 1, 1)[0], _named("sleeper", 1, 1)[0]
    strangers = _named("stranger", 1, REFERRALS // 3)
    for name in (friend, sleeper):
        log.send(name, _event(program_id, name, f"{name}-joins", {}), 1)
    log.send(near, _event(program_id, near, f"{near}-joins", {}), 0)
    await settle(broker, partitions_dir, TOPIC, PARTITIONS)
    await _suspend(partitions_dir, sleeper)

    expected = {friend: 0, sleeper: 0, near: REFERRER_CREDIT, counted_by: 0}
    referrers = [(friend, strangers[i // 3], sleeper)[i % 3] for i in range(REFERRALS)] + [near]
    for i, (newcomer, referrer) in enumerate(zip(newcomers, referrers, strict=True)):
        log.send(newcomer, _event(program_id, newcomer, f"ref-{i}", {"referrer_id": referrer}), 0)
        expected[newcomer] = NEWCOMER_CREDIT
        if referrer != sleeper and referrer != near:
            expected[referrer] = expected.get(referrer, 0) + REFERRER_CREDIT
    log.send(counted_by, _event(program_id, counted_by, "count", {"count_for": friend}), 0)
    await _kill_mid_run(broker, partitions_dir)
    await settle(broker, partitions_dir, TOPIC, PARTITIONS)

    applied, _ = await applied_balances(partitions_dir, PARTITIONS, asset_id)  # `scrip verify` passes on each
    assert applied == expected
    transit = issuance = 0
    for partition in range(PARTITIONS):
        async with open_engine(config=config_for(partition_data_dir(partitions_dir, partition))) as engine:
            accounts = engine._store
            for other in range(PARTITIONS):
                transit += (
                    accounts.get("accounts", account_key("SYSTEM", transit_account(other), asset_id).encode(), int) or 0
                )
            issuance += accounts.get("accounts", account_key("SYSTEM", SYSTEM_ISSUANCE, asset_id).encode(), int) or 0
            entries = (await engine.list_journal_entries(limit=200, rule_id=rule_id)).data
            if partition == 0:
                returned = [entry for entry in entries if entry.action_type == "CREDIT_RETURN"]
                assert len(returned) == REFERRALS // 3, "each credit to the suspended referrer came back once"
                failed = (await engine.list_events(status="FAILED")).data
                assert [event.external_id for event in failed] == [counted_by]
                assert "only a CREDIT" in (failed[0].error_message or "")
                continue
            arrived = [entry for entry in entries if entry.action_type == "CREDIT"]
            assert len(arrived) == 2 * REFERRALS // 3, "one entry per credit delivered, none twice"
            origins = {entry.event_id for entry in arrived}
            assert len(origins) == len(arrived) and all(entry.reference_id for entry in arrived)
            stranger = await engine.get_participant_by_external_id(strangers[0])
            assert stranger.id.startswith("00000001"), "created where it lives, with an id that names it"
            (lot,) = await engine.lots(stranger.id, asset_id)
            assert lot.expires_at is not None
            assert timedelta(days=30) - timedelta(minutes=5) < lot.expires_at - lot.created_at < timedelta(days=31)
    assert transit == 0, "value left in transit, or made on the way"
    assert issuance == -sum(expected.values()), "every point issued is held by exactly one participant"
