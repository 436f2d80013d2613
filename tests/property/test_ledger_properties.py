"""Acceptance 5: random sequences of funding, rules, events, credits, debits, status changes and time.

After every sequence:
* ``verify`` passes: every entry sums to zero, every cached balance equals the sum of its postings, lot remainders
  match LOT balances, the hash chain holds, wallets are never negative;
* an *auditor* — a deliberately naive model of the SIMPLE balances and the wallet, after TigerBeetle's auditor —
  agrees with the engine on every balance and on which events failed;
* nothing is below zero unless an ``allow_negative`` debit touched it.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scrip_actor import CreditAction, DebitAction, Engine, open_engine
from tests.conftest import ManualClock, small_config
from tests.helpers import program_with_asset, rule

PARTICIPANTS = ["p0", "p1", "p2"]
cents = st.integers(min_value=1, max_value=5000).map(lambda c: Decimal(c) / 100)
operation = st.one_of(
    st.tuples(
        st.just("event"),
        st.sampled_from(PARTICIPANTS),
        st.sampled_from(["earn_s", "spend_s", "earn_w", "earn_l", "vest_l", "spend_l", "overdraw_l"]),
        cents,
    ),
    st.tuples(st.just("fund"), cents),
    st.tuples(st.just("burn"), cents),
    st.tuples(st.just("advance"), st.integers(min_value=1, max_value=60)),
    st.tuples(st.just("status"), st.sampled_from(PARTICIPANTS), st.sampled_from(["ACTIVE", "SUSPENDED"])),
)


async def _setup(engine: Engine) -> dict[str, Any]:
    program, simple = await program_with_asset(engine, symbol="S")
    lot = await engine.create_asset(_asset(program.id, "L", "LOT", "UNLIMITED", 0))
    wallet = await engine.create_asset(_asset(program.id, "W", "SIMPLE", "PREFUNDED", 2))
    rules = [
        ("event.type == 'earn_s'", [CreditAction(asset_id=simple.id, amount="event.amount")]),
        ("event.type == 'spend_s'", [DebitAction(asset_id=simple.id, amount="event.amount")]),
        ("event.type == 'earn_w'", [CreditAction(asset_id=wallet.id, amount="1.50")]),
        ("event.type == 'earn_l'", [CreditAction(asset_id=lot.id, amount="event.points", expires_at="48h")]),
        ("event.type == 'vest_l'", [CreditAction(asset_id=lot.id, amount="event.points", matures_at="24h")]),
        ("event.type == 'spend_l'", [DebitAction(asset_id=lot.id, amount="event.points")]),
        ("event.type == 'overdraw_l'", [DebitAction(asset_id=lot.id, amount="event.points", allow_negative=True)]),
    ]
    for condition, actions in rules:
        await rule(engine, program, condition, actions)
    return {"program": program, "simple": simple, "lot": lot, "wallet": wallet}


def _asset(program_id: str, symbol: str, mode: str, policy: str, scale: int) -> Any:
    from scrip_actor import AssetCreate

    return AssetCreate(
        program_id=program_id,
        name=symbol,
        symbol=symbol,
        inventory_mode=mode,  # type: ignore[arg-type]
        issuance_policy=policy,
        scale=scale,
    )  # type: ignore[arg-type]


class Auditor:
    """The naive model: SIMPLE balances and the wallet as plain Decimals, statuses as a dict."""

    def __init__(self) -> None:
        self.simple = {p: Decimal(0) for p in PARTICIPANTS}
        self.wallet_asset = {p: Decimal(0) for p in PARTICIPANTS}
        self.wallet = Decimal(0)
        self.status = {p: "ACTIVE" for p in PARTICIPANTS}
        self.overdrawn: set[str] = set()

    def expect(self, participant: str, kind: str, amount: Decimal) -> bool | None:
        """Apply an event to the model; return whether it should complete (None: the model does not judge it)."""
        active = self.status[participant] == "ACTIVE"
        if kind == "earn_s":
            if active:
                self.simple[participant] += amount
            return active
        if kind == "spend_s":
            if active and self.simple[participant] >= amount:
                self.simple[participant] -= amount
                return True
            return False
        if kind == "earn_w":
            if active and self.wallet >= Decimal("1.50"):
                self.wallet -= Decimal("1.50")
                self.wallet_asset[participant] += Decimal("1.50")
                return True
            return False
        if kind == "overdraw_l" and active:
            self.overdrawn.add(participant)
        return None


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(operations=st.lists(operation, min_size=1, max_size=30))
async def test_random_sequences_keep_the_ledger_consistent(operations: list[tuple[Any, ...]]) -> None:
    clock = ManualClock(datetime(2026, 3, 1, tzinfo=UTC))
    auditor = Auditor()
    with tempfile.TemporaryDirectory() as directory:
        async with open_engine(config=small_config(Path(directory)), clock=clock) as engine:
            world = await _setup(engine)
            program = world["program"]
            ids: dict[str, str] = {}
            for number, op in enumerate(operations):
                await _run(engine, world, auditor, clock, ids, number, op)
            await engine.wait_idle()
            await _check(engine, world, auditor, ids)
            report = await engine.verify()
            assert report.ok, report.problems
            assert report.events_pending == 0
            assert program.id


async def _run(
    engine: Engine,
    world: dict[str, Any],
    auditor: Auditor,
    clock: ManualClock,
    ids: dict[str, str],
    number: int,
    op: tuple[Any, ...],
) -> None:
    from scrip_actor import EventSubmit, InsufficientFunds, ParticipantCreate

    program = world["program"]
    kind = op[0]
    if kind == "event":
        _, participant, event_type, amount = op
        points = int(amount * 100) % 97 + 1
        data = {"type": event_type, "amount": float(amount), "points": points}
        submitted = await engine.submit(
            EventSubmit(
                program_id=program.id,
                external_id=participant,
                idempotency_key=f"e{number}",
                event_data=data,
                event_timestamp=clock.now,
            )
        )
        await engine.wait_idle()
        outcome = await engine.get_event(submitted.id)
        ids[participant] = outcome.participant_id or ids.get(participant, "")
        expected = auditor.expect(participant, event_type, amount)
        if expected is not None:
            assert (outcome.status == "COMPLETED") == expected, (op, outcome.error_message)
    elif kind == "fund":
        await engine.fund(program.id, world["wallet"].id, str(op[1]))
        auditor.wallet += op[1]
    elif kind == "burn":
        try:
            await engine.burn(program.id, world["wallet"].id, str(op[1]))
            assert auditor.wallet >= op[1]
            auditor.wallet -= op[1]
        except InsufficientFunds:
            assert auditor.wallet < op[1]
    elif kind == "advance":
        clock.advance(timedelta(hours=op[1]))
        engine.sweep_due()
        await engine.wait_idle()
    elif kind == "status":
        _, participant, status = op
        created, _ = await engine.create_participant(ParticipantCreate(external_id=participant))
        await engine.set_participant_status(created.id, status)
        auditor.status[participant] = status
        ids[participant] = created.id


async def _check(engine: Engine, world: dict[str, Any], auditor: Auditor, ids: dict[str, str]) -> None:
    [wallet] = await engine.wallet_balances(world["program"].id)
    assert Decimal(wallet.available) == auditor.wallet
    for participant in PARTICIPANTS:
        if not ids.get(participant):
            assert auditor.simple[participant] == 0
            continue
        state = await engine.get_participant(ids[participant])
        balances = {b.asset_id: b for b in state.balances}
        simple = balances.get(world["simple"].id)
        assert Decimal(simple.available if simple else "0") == auditor.simple[participant]
        paid = balances.get(world["wallet"].id)
        assert Decimal(paid.available if paid else "0") == auditor.wallet_asset[participant]
        lot = balances.get(world["lot"].id)
        if lot is not None and participant not in auditor.overdrawn:
            assert Decimal(lot.available) >= 0
            assert Decimal(lot.deferred) >= 0
        if lot is not None:
            lots = await engine.lots(ids[participant], world["lot"].id)
            open_total = sum(Decimal(x.remaining) for x in lots if x.status == "AVAILABLE")
            assert Decimal(lot.available) <= open_total
