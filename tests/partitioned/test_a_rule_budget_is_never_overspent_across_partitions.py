"""A rule budget spent from every partition at once is never exceeded, and none of it is stranded.

Real Tansu, real LMDB, the engine role's own code (scrip_actor/partitioned/_budget_leases.py). Three partitions
share one rule's lifetime budget of 500; the rule credits 7 per event (an UNLIMITED asset: only the budget limits
it), and 150 events (1,050 wanted) arrive for participants on all three partitions. Leases are granted, run short,
and the endgame recalls them; engine processes are SIGKILLed mid-run (the owner's twice) before the partitions
settle.

Asserted: what participants received is exactly 7 per applied match and never more than the limit; what is left
is less than one credit (71 matches of 7 fit in 500: exactly 497 issued, so no lease sat stranded in a quiet
partition while a match was skipped); every other match was skipped as BUDGET_EXCEEDED and its event COMPLETED;
the owner's books agree with the leases (what it leased out is what the others hold); `scrip verify` passes on every
store (it recomputes each partition's consumption from its journal).
"""

from __future__ import annotations

import random
import shutil
import signal
from pathlib import Path

import msgspec
import pytest
import trio

from scrip_actor import open_engine
from scrip_actor.engine import Engine
from scrip_actor.model import AssetCreate, BudgetSpec, CreditAction, Event, ProgramCreate, RuleCreate
from scrip_actor.partitioned import _kafka, partition_data_dir
from scrip_actor.partitioned._budget_messages import budget_owner
from scrip_actor.partitioned._routing import partition_for
from tests.partitioned.partition_setup import applied_balances, config_for, log_end, settle, start_engine

TOPIC = "events-budgets"
PARTITIONS = 3
LIMIT = 500
CREDIT = 7
EVENTS = 150
PARTICIPANTS = 30


async def _template(tmp_path: Path, limit: int = LIMIT) -> tuple[Path, str, str, str]:
    template = tmp_path / "template"
    async with open_engine(config=config_for(template)) as engine:
        program = await engine.create_program(ProgramCreate(name="shared budget"))
        asset = await engine.create_asset(
            AssetCreate(
                program_id=program.id, name="Points", symbol="PTS", inventory_mode="SIMPLE",
                issuance_policy="UNLIMITED", scale=0,
            )
        )  # fmt: skip
        rule = await engine.create_rule(
            RuleCreate(
                program_id=program.id, name="seven", condition="true",
                actions=[CreditAction(asset_id=asset.id, amount=str(CREDIT))],
                budgets=[BudgetSpec(asset_id=asset.id, limit=str(limit))],
            )
        )  # fmt: skip
    return template, program.id, asset.id, rule.id


async def _seeded(broker: str, tmp_path: Path, limit: int = LIMIT) -> tuple[Path, str, str, str]:
    template, program_id, asset_id, rule_id = await _template(tmp_path, limit)
    partitions_dir = tmp_path / "partitions"
    for partition in range(PARTITIONS):
        shutil.copytree(template, partition_data_dir(partitions_dir, partition))
    _kafka.create_topic(broker, TOPIC, PARTITIONS)
    return partitions_dir, program_id, asset_id, rule_id


def _event(program_id: str, name: str, key: str) -> tuple[str, int, bytes]:
    body = {"program_id": program_id, "external_id": name, "idempotency_key": key, "event_data": {}}
    return (name, partition_for(name, PARTITIONS), msgspec.json.encode(body))


def _produce(bootstrap: str, records: list[tuple[str, int, bytes]]) -> None:
    producer = _kafka.RecordProducer(bootstrap)
    errors: list[str] = []

    def on_acked(error: str | None, _partition: int, _offset: int) -> None:
        if error is not None:
            errors.append(error)

    for key, partition, value in records:
        producer.produce(TOPIC, key.encode(), value, on_acked, partition=partition)
    assert producer.flush() == 0
    assert errors == []


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


async def _outcomes(partitions_dir: Path, rule_id: str, asset_id: str) -> tuple[int, int, int, int]:
    """Over every partition: matches applied, matches skipped, leases held by the non-owners (their ``leased``) and
    what the owner has leased out; every event COMPLETED and each match applied or skipped for the budget."""
    applied = skipped = held_by_others = leased_out = 0
    owner = budget_owner(rule_id, asset_id, PARTITIONS)
    for partition in range(PARTITIONS):
        async with open_engine(config=config_for(partition_data_dir(partitions_dir, partition))) as engine:
            budget = engine._budgets.find(rule_id, asset_id)
            assert budget is not None
            if partition == owner:
                leased_out = budget.state.leased_minor
            else:
                held_by_others += budget.state.leased_minor
                assert budget.state.consumed_minor <= budget.state.leased_minor, "consumed beyond the lease"
            for event in await _all_events(engine):
                assert event.status == "COMPLETED", event
                (evaluation,) = event.rule_evaluations
                if evaluation.status == "SKIPPED":
                    assert evaluation.reason == "BUDGET_EXCEEDED", evaluation
                    skipped += 1
                else:
                    assert evaluation.status == "MATCHED", evaluation
                    applied += 1
    return applied, skipped, held_by_others, leased_out


# The calm run is the killed run without its kills: the default suite keeps the harder one (--run-slow runs both).
@pytest.mark.parametrize(
    "kills", [pytest.param(False, marks=pytest.mark.slow, id="calm"), pytest.param(True, id="owner-and-asker-killed")]
)
async def test_a_budget_spent_from_every_partition_is_never_exceeded(broker: str, tmp_path: Path, kills: bool) -> None:
    partitions_dir, program_id, asset_id, rule_id = await _seeded(broker, tmp_path)
    names = [f"member{n}" for n in range(PARTICIPANTS)]
    assert {partition_for(name, PARTITIONS) for name in names} == set(range(PARTITIONS))
    records = [_event(program_id, names[n % PARTICIPANTS], f"buy-{n}") for n in range(EVENTS)]
    await trio.to_thread.run_sync(_produce, broker, records)
    if kills:  # SIGKILL the owner and then an asker while they ask, grant, hold and recall
        owner = budget_owner(rule_id, asset_id, PARTITIONS)
        for partition in [(owner + 1) % PARTITIONS, owner, (owner + 2) % PARTITIONS, owner]:
            await _run_and_kill(broker, partitions_dir, partition, random.uniform(0.05, 0.4))
    await settle(broker, partitions_dir, TOPIC, PARTITIONS, rounds_max=60)

    balances, events_stored = await applied_balances(partitions_dir, PARTITIONS, asset_id)  # verify on each store
    assert events_stored == EVENTS
    credited = sum(balances.values())
    applied, skipped, held_by_others, leased_out = await _outcomes(partitions_dir, rule_id, asset_id)
    assert applied + skipped == EVENTS
    assert credited == applied * CREDIT, "a credit was applied without its match, or twice"
    assert credited <= LIMIT, "the budget was exceeded"
    assert credited == (LIMIT // CREDIT) * CREDIT, f"{credited} issued of {LIMIT}: a lease was stranded"
    assert leased_out == held_by_others, "the owner's books disagree with the leases"
