"""A backtest of the unchanged rule set reproduces the live journal's totals exactly, and never writes.

Random event streams (a few participants, purchases and refunds of random amounts, time passing so LOT credits
expire and mature) over a SIMPLE and a LOT asset and rules that credit, debit and count; the window is a random
slice of the history, so the state at its start is rebuilt from the events before it. The backtest with
``rules = null`` must give, per asset and per rule, exactly the live journal's credited and debited amounts; and
the store must be the same afterwards, record for record, with ``verify`` passing.
"""

from __future__ import annotations

import hashlib
import tempfile
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scrip_actor import CounterAction, CreditAction, DebitAction, Engine, open_engine
from scrip_actor.backtest_model import BacktestCreate, ProposedRule
from scrip_actor.store import Store
from tests.conftest import ManualClock, small_config
from tests.helpers import program_with_asset, rule

START = datetime(2026, 1, 1, tzinfo=UTC)
PARTICIPANTS = ["p0", "p1", "p2"]

event = st.tuples(
    st.sampled_from(PARTICIPANTS),
    st.sampled_from(["purchase", "refund", "other program", "burn"]),
    st.integers(min_value=1, max_value=300),  # amount
    st.integers(min_value=1, max_value=60 * 30),  # minutes before the next one arrives
)


async def _history(engine: Engine, clock: ManualClock, events: list[tuple[Any, ...]]) -> tuple[Any, Any, Any]:
    program, points = await program_with_asset(engine)
    miles = await engine.create_asset(
        _asset_create(program.id, "MILES", "LOT", "UNLIMITED")  # credits that expire after two days, vest after 1h
    )
    gems = await engine.create_asset(_asset_create(program.id, "GEMS", "SIMPLE", "PREFUNDED"))
    await engine.fund(program.id, gems.id, "100000")  # never runs out: the order across participants cannot matter
    other, other_points = await program_with_asset(engine, symbol="OTHER")
    await rule(engine, other, "true", [CreditAction(asset_id=other_points.id, amount="7")], name="other")
    await rule(
        engine,
        program,
        "event.type == 'purchase'",
        [
            CreditAction(asset_id=points.id, amount="event.amount * 0.1"),
            CreditAction(asset_id=miles.id, amount="event.amount", expires_at="48h", matures_at="1h"),
            CounterAction(key="purchases", value="1"),
            CreditAction(asset_id=gems.id, amount="1"),
        ],
        name="earn",
    )
    await rule(
        engine,
        program,
        "event.type == 'refund' && participant.counters.purchases >= 2.0",
        [DebitAction(asset_id=points.id, amount="1")],
        name="claw back",
    )
    for index, (external_id, kind, amount, minutes) in enumerate(events):
        clock.advance(timedelta(minutes=minutes))
        if kind == "burn":  # a wallet operation between events: the replay applies it in its place
            await engine.burn(program.id, gems.id, str(amount))
            continue
        target = other.id if kind == "other program" else program.id  # another program's events interleave
        await engine.submit(_submit(target, external_id, kind, amount, index))
        if index % 3 == 0:
            await engine.wait_idle()
            engine.sweep_due()  # lots mature and expire between events too, as the sweeper would do
    await engine.wait_idle()
    return program, points, (miles, gems)


def _asset_create(program_id: str, symbol: str, mode: str, policy: str) -> Any:
    from scrip_actor import AssetCreate

    return AssetCreate(
        program_id=program_id, name=symbol, symbol=symbol, inventory_mode=mode, issuance_policy=policy, scale=0
    )  # type: ignore[arg-type]


def _submit(program_id: str, external_id: str, kind: str, amount: int, index: int) -> Any:
    from scrip_actor import EventSubmit

    return EventSubmit(
        program_id=program_id,
        external_id=external_id,
        idempotency_key=f"e{index}",
        event_data={"type": kind, "amount": amount},
    )


def store_digest(engine: Engine) -> str:
    """Every record of every database of the engine's store, hashed in key order."""
    store: Store = engine._store
    digest = hashlib.sha256()
    for name in sorted(store.dbs):
        for key, value in store.scan(name):
            digest.update(name.encode() + b"\0" + key + b"\0" + value)
    return digest.hexdigest()


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    events=st.lists(event, min_size=3, max_size=30),
    cut=st.floats(min_value=0.0, max_value=1.0),
    length=st.floats(min_value=0.05, max_value=1.0),
)
async def test_a_backtest_of_the_unchanged_rules_gives_the_live_totals_exactly_and_writes_nothing(
    events: list[tuple[Any, ...]], cut: float, length: float
) -> None:
    clock = ManualClock(START)
    with tempfile.TemporaryDirectory() as directory:
        async with open_engine(config=small_config(Path(directory) / "data"), clock=clock) as engine:
            program, points, (miles, gems) = await _history(engine, clock, events)
            span = clock.now - START
            from_ = START + span * cut
            to = from_ + max(span * length, timedelta(seconds=1))
            engine.sweep_due()  # nothing is left due (the clock is manual), so the sweeper has nothing to write
            await engine.wait_idle()
            before = store_digest(engine)
            report = await engine.backtest(program.id, BacktestCreate(rules=None, from_=from_, to=to))
            assert report.status == "COMPLETED", report.failure_reason
            assert report.totals == report.actual
            assert all(Decimal(row.credited) == Decimal(row.debited) == 0 for row in report.difference)
            for row in report.rules:
                assert (row.matches, row.credited, row.debited) == (
                    row.actual_matches,
                    row.actual_credited,
                    row.actual_debited,
                ), row
            for asset in report.assets:
                assert asset.credited == asset.actual_credited
                assert asset.debited == asset.actual_debited
                assert asset.wallet_draw == asset.actual_wallet_draw
                assert asset.wallet_failures == 0
            assert report.events_failed == report.events_failed_actual
            # The proposed set spelled out as the current rules, by id, gives the same as null.
            current = [engine.rule(row.rule_id) for row in report.rules if row.rule_id is not None]
            spelled = [
                ProposedRule(rule_id=r.id, name=r.name, condition=r.condition, actions=r.actions, order=r.order)
                for r in {r.id: r for r in current}.values()
            ]
            again = await engine.backtest(program.id, BacktestCreate(rules=spelled, from_=from_, to=to))
            assert again.totals == report.totals
            assert store_digest(engine) == before  # read-only: not one record changed
            verified = await engine.verify()
            assert verified.ok, verified.problems
            assert {points.id, miles.id, gems.id} >= {row.asset_id for row in report.totals}  # not the other's
