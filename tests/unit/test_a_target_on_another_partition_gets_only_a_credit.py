"""The step's half of a rule's credit to a participant of another partition (partitioned mode), as a pure function.

With ``StepLimits.remote_partition`` set (the partition's applier sets it), a target that lives elsewhere is not
found or created here: a CREDIT to it is one CREDIT entry from the issuance (or the program wallet, which must
cover it) to that partition's transit account, and a RemoteCredit for the outbox, with the lot's dates; any other
action on it fails the event; a rolled-back step sends nothing. The end-to-end path (outbox, destination, return)
is tests/partitioned/test_a_referrers_credit_on_another_partition_is_applied_once.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest

from scrip_actor.engine._step import StepLimits, StepResult, step_event
from scrip_actor.ids import SequenceIds
from scrip_actor.ledger import SYSTEM_ISSUANCE, RemoteTarget, WalletShort, World, account_key, transit_account
from scrip_actor.model import (
    Asset,
    CounterAction,
    CreditAction,
    DebitAction,
    Event,
    Program,
    Rule,
    TagAction,
    Target,
)
from scrip_actor.rules import cel_event_data, compile_rule

T0 = datetime(2026, 1, 1, tzinfo=UTC)
ELSEWHERE = {"far": 3}  # external id -> the partition it lives on (everyone else lives here)
LIMITS = StepLimits(
    cel_cost_per_event_max=20_000,
    external_id_length_max=255,
    tags_per_participant_max=3,
    counters_per_participant_max=10,
    attributes_per_participant_max=10,
    remote_partition=ELSEWHERE.get,
)
REFERRER = Target(external_id="event.referrer")


class _Nobody:
    """Lookups with no participant yet: the event's own is created by the step."""

    def participant(self, participant_id: str) -> None:
        return None

    def participant_by_external(self, external_id: str) -> None:
        return None


def _step(
    actions: list[Any],
    referrer: str = "far",
    policy: str = "UNLIMITED",
    wallet_minor: int = 0,
    limits: StepLimits = LIMITS,
) -> tuple[World, StepResult]:
    world = World(SequenceIds(7))
    program = Program(id="prog", name="P", created_at=T0, updated_at=T0)
    world.assets["pts"] = Asset(
        id="pts", name="Points", symbol="PTS", inventory_mode="LOT", issuance_policy=policy,  # type: ignore[arg-type]
        scale=0, program_ids=[program.id], created_at=T0, updated_at=T0,
    )  # fmt: skip
    if wallet_minor:
        world.accounts[account_key("PROGRAM", program.id, "pts")] = wallet_minor
    rule = Rule(
        id="referral", program_id="prog", name="referral", condition="true", actions=actions, order=0,
        created_at=T0, updated_at=T0,
    )  # fmt: skip
    event = Event(
        id="00000000-0000-8000-8000-000000000001", sequence=1, program_id="prog", external_id="newcomer",
        idempotency_key="k1", event_timestamp=T0, event_data={"referrer": referrer}, created_at=T0,
    )  # fmt: skip
    result = step_event(
        event, cel_event_data(event.event_data), [compile_rule(rule, world.assets)], program, None,
        world=world, limits=limits, lookups=_Nobody(), wall_now=T0,
    )  # fmt: skip
    return world, result


def test_a_credit_to_a_remote_target_goes_to_its_partitions_transit_account_with_the_lots_dates() -> None:
    world, result = _step([CreditAction(asset_id="pts", amount="25", expires_at="720h", target=REFERRER)])
    assert result.failure is None and result.changes is not None
    (entry,) = [entry for entry in result.changes.entries if entry.rule_id == "referral"]
    legs = {(p.entity_type, p.entity_id): p.amount_minor for p in entry.postings}
    assert entry.action_type == "CREDIT"
    assert legs == {("SYSTEM", SYSTEM_ISSUANCE): -25, ("SYSTEM", transit_account(3)): 25}
    assert world.accounts[account_key("SYSTEM", transit_account(3), "pts")] == 25
    (credit,) = result.remote_credits
    assert credit.target == RemoteTarget(3, "far")
    assert (credit.amount_minor, credit.rule_id, credit.entry.id) == (25, "referral", entry.id)
    assert credit.expires_at == T0 + timedelta(hours=720) and credit.matures_at is None
    assert [state.external_id for state in result.changes.participants] == ["newcomer"], "nobody is made for it here"


def test_a_local_target_is_unchanged() -> None:
    _, result = _step([CreditAction(asset_id="pts", amount="25", target=REFERRER)], referrer="near")
    assert result.failure is None and result.changes is not None and result.remote_credits == []
    assert {state.external_id for state in result.changes.participants} == {"newcomer", "near"}


@pytest.mark.parametrize(
    "action",
    [
        CounterAction(key="referrals", value="1", target=REFERRER),
        TagAction(tag="referrer", target=REFERRER),
        DebitAction(asset_id="pts", amount="1", target=REFERRER),
        CreditAction(asset_id="pts", amount="1", target=REFERRER, reference_id="'auth-1'", bucket="HELD"),
    ],
    ids=["counter", "tag", "debit", "provisional-credit"],
)
def test_any_other_action_on_a_remote_target_fails_the_event_and_sends_nothing(action: Any) -> None:
    world, result = _step([CreditAction(asset_id="pts", amount="25", target=REFERRER), action])
    assert result.failure is not None and "lives on partition 3" in result.failure
    assert result.remote_credits == [], "the credit before it was rolled back with it: nothing leaves"
    assert account_key("SYSTEM", transit_account(3), "pts") not in world.accounts


def test_a_prefunded_remote_credit_needs_the_wallet_to_cover_it_or_holds_for_more() -> None:
    credit = [CreditAction(asset_id="pts", amount="25", target=REFERRER)]
    world, result = _step(credit, policy="PREFUNDED", wallet_minor=30)
    assert result.failure is None and result.remote_credits
    assert world.accounts[account_key("PROGRAM", "prog", "pts")] == 5
    _, short = _step(credit, policy="PREFUNDED", wallet_minor=10)
    assert short.failure is not None and short.held is None and short.remote_credits == []
    # A partition that may hold (shared wallets) holds the step to ask the wallet's owner, as for a local credit.
    holding = msgspec.structs.replace(LIMITS, hold_when_short=True)
    world, held = _step(credit, policy="PREFUNDED", wallet_minor=10, limits=holding)
    assert isinstance(held.held, WalletShort) and held.changes is None and held.remote_credits == []
    assert world.accounts[account_key("PROGRAM", "prog", "pts")] == 10, "a held step changed nothing"
