"""The money-out series move with the journal entries real operations write, and with nothing else.

One LOT participant goes through every kind of entry that takes value out of, or moves value within, a balance:
adjustments both ways, a hold, a release and two forfeits, two redemptions (one replayed by its idempotency key)
with a partial and a final reversal, a rule's DEBIT, an authorization settled above its amount and one voided.
The amounts are chosen so that each series' total can be read off the steps; a refused operation counts nothing.
"""

from __future__ import annotations

from datetime import timedelta

import msgspec
import pytest
from prometheus_client import CollectorRegistry

from scrip_actor import (
    Asset,
    BalanceAdjust,
    BalanceOperation,
    Engine,
    InsufficientFunds,
    Program,
    RedemptionCreate,
    ReversalCreate,
)
from scrip_actor.metrics import EngineMetrics
from scrip_actor.model import CreditAction, DebitAction
from tests.conftest import ManualClock
from tests.helpers import program_with_asset, rule, send


def _value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    value = registry.get_sample_value(name, labels)
    assert value is not None, (name, labels)  # every series is bound per asset: absent would be a bug
    return value


async def _rules(engine: Engine, program: Program, asset: Asset) -> None:
    """buy earns 100; auth credits event.points provisionally to HELD; capture settles; spend debits 3."""
    await rule(engine, program, "event.type == 'buy'", [CreditAction(asset_id=asset.id, amount="100")])
    held = CreditAction(asset_id=asset.id, amount="event.points", bucket="HELD", reference_id="event.auth")
    await rule(engine, program, "event.type == 'auth'", [held])
    settle = CreditAction(asset_id=asset.id, amount="event.points", reference_id="event.auth")
    await rule(engine, program, "event.type == 'capture'", [settle])
    await rule(engine, program, "event.type == 'spend'", [DebitAction(asset_id=asset.id, amount="3")])


async def test_every_money_out_entry_moves_its_series(engine: Engine) -> None:
    registry = CollectorRegistry()
    EngineMetrics(registry).attach(engine)
    program, asset = await program_with_asset(engine, mode="LOT", scale=2)
    await _rules(engine, program, asset)
    await send(engine, program, "u1", {"type": "buy"})
    participant_id = (await engine.get_participant_by_external_id("u1")).id
    a = asset.id

    def adjust(kind: str, amount: str) -> BalanceAdjust:
        return BalanceAdjust(program_id=program.id, asset_id=a, type=kind, amount=amount, description="fix")  # type: ignore[arg-type]

    def operation(amount: str | None = None, **fields: str) -> BalanceOperation:
        return BalanceOperation(program_id=program.id, asset_id=a, description="op", amount=amount, **fields)  # type: ignore[arg-type]

    await engine.adjust_balance(participant_id, adjust("CREDIT", "10.50"))
    await engine.adjust_balance(participant_id, adjust("DEBIT", "4"))
    await engine.balance_operation("HOLD", participant_id, operation("30", reference_id="a"))
    await engine.balance_operation("RELEASE", participant_id, operation("12", reference_id="a"))
    await engine.balance_operation("FORFEIT", participant_id, operation("8", bucket="HELD"))
    await engine.balance_operation("FORFEIT", participant_id, operation("5", bucket="AVAILABLE"))
    assert _value(registry, "scrip_adjustments_total", asset=a, direction="credit") == 1
    assert _value(registry, "scrip_adjustments_total", asset=a, direction="debit") == 1
    assert _value(registry, "scrip_amount_adjusted_total", asset=a, direction="credit") == 10.5
    assert _value(registry, "scrip_amount_adjusted_total", asset=a, direction="debit") == 4.0
    assert _value(registry, "scrip_amount_held_total", asset=a) == 30.0
    assert _value(registry, "scrip_amount_released_total", asset=a) == 12.0
    assert _value(registry, "scrip_amount_forfeited_total", asset=a) == 13.0  # from HELD and from AVAILABLE
    assert _value(registry, "scrip_amount_issued_total", asset=a) == 100.0  # an ADJUST credit is not issuance

    spend = RedemptionCreate(program_id=program.id, asset_id=a, amount="20", description="a mug")
    first, _ = await engine.redemptions.create(participant_id, spend)
    keyed = RedemptionCreate(program_id=program.id, asset_id=a, amount="7.25", description="a pen", idempotency_key="r")
    await engine.redemptions.create(participant_id, keyed)
    _, created = await engine.redemptions.create(participant_id, keyed)  # a replay writes no entry
    assert not created
    with pytest.raises(InsufficientFunds):  # a refusal writes no entry either
        await engine.redemptions.create(participant_id, msgspec.structs.replace(spend, amount="9999"))
    await engine.redemptions.reverse(first.id, ReversalCreate(reason="one broke", amount="6", idempotency_key="v"))
    await engine.redemptions.reverse(first.id, ReversalCreate(reason="one broke", amount="6", idempotency_key="v"))
    await engine.redemptions.reverse(first.id, ReversalCreate(reason="returned"))  # the 14 left
    await send(engine, program, "u1", {"type": "spend"})  # a rule's DEBIT of 3 is redeemed too
    assert _value(registry, "scrip_redemptions_total", asset=a) == 2
    assert _value(registry, "scrip_redemption_amount_total", asset=a) == 27.25
    assert _value(registry, "scrip_redemption_reversals_total", asset=a) == 2
    assert _value(registry, "scrip_redemption_reversed_amount_total", asset=a) == 20.0
    # Gross: a reversal is counted on its own rather than subtracted, so this counter never goes down.
    assert _value(registry, "scrip_amount_redeemed_total", asset=a) == 30.25

    await send(engine, program, "u1", {"type": "auth", "auth": "x", "points": 40})
    await send(engine, program, "u1", {"type": "capture", "auth": "x", "points": 45})
    await send(engine, program, "u1", {"type": "auth", "auth": "y", "points": 10})
    await engine.balance_operation("VOID_HOLD", participant_id, operation(reference_id="y"))
    assert _value(registry, "scrip_amount_settled_total", asset=a) == 45.0  # the amount settled, not the 40 held
    assert _value(registry, "scrip_amount_voided_total", asset=a) == 10.0
    assert _value(registry, "scrip_amount_issued_total", asset=a) == 150.0  # provisional credits are issued
    assert _value(registry, "scrip_amount_held_total", asset=a) == 30.0  # a provisional credit is not a HOLD
    balance = (await engine.balances(participant_id, a))[0]
    # AVAILABLE: 100 + 10.50 - 4 - 30 + 12 - 5 - 27.25 + 20 - 3 + 45; HELD: 30 - 12 - 8 (x settled, y voided).
    assert (balance.available, balance.held) == ("118.25", "10.00")


async def test_a_reversal_of_expired_lots_counts_as_reversed_and_then_expired(
    engine: Engine, clock: ManualClock
) -> None:
    registry = CollectorRegistry()
    EngineMetrics(registry).attach(engine)
    program, asset = await program_with_asset(engine, mode="LOT", scale=0)
    await rule(engine, program, "true", [CreditAction(asset_id=asset.id, amount="5", expires_at="1h")])
    await send(engine, program, "ann", {}, at=clock.now)
    participant_id = (await engine.get_participant_by_external_id("ann")).id
    spend = RedemptionCreate(program_id=program.id, asset_id=asset.id, amount="5", description="a mug")
    redemption, _ = await engine.redemptions.create(participant_id, spend)
    clock.advance(timedelta(hours=2))  # the lot the redemption spent has expired since
    await engine.redemptions.reverse(redemption.id, ReversalCreate(reason="returned"))
    # The reversal gives the 5 back and the restored lot goes straight to breakage: both are in the series, so
    # net redeemed (redeemed - reversed) is 0 and the value shows up where it went, as expired.
    assert _value(registry, "scrip_redemption_reversed_amount_total", asset=asset.id) == 5.0
    assert _value(registry, "scrip_amount_redeemed_total", asset=asset.id) == 5.0
    assert _value(registry, "scrip_amount_expired_total", asset=asset.id) == 5.0
