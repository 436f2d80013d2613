"""Card-style authorization flows driven by events (docs/money-out.md, the hosted API's §5.4):

* pattern B — an ``auth`` event credits provisional points to HELD with the authorization's id; a ``capture``
  settles them (the settled amount may differ: the delta moves on the source), a ``void`` returns them;
* pattern A — a ``reserve`` event HOLDs earned points under a reference, ``unreserve`` RELEASEs them by it.

Both on a PREFUNDED asset, so every unit's way in and out of the program wallet is checked too, and the journal
filtered by the reference shows the whole chain.
"""

from __future__ import annotations

from typing import Any

import pytest

from scrip_actor import Engine, ValidationFailed
from scrip_actor.model import (
    CreditAction,
    HoldAction,
    ReleaseAction,
    VoidHoldAction,
)
from tests.helpers import program_with_asset, rule, send


async def _card_program(engine: Engine) -> tuple[Any, Any]:
    program, asset = await program_with_asset(engine, mode="LOT", policy="PREFUNDED", scale=0)
    await engine.fund(program.id, asset.id, "1000")
    auth_id = "event.authorization_id"
    await rule(
        engine,
        program,
        "event.type == 'auth'",
        [CreditAction(asset_id=asset.id, amount="event.amount", bucket="HELD", reference_id=auth_id)],
        name="provisional points at authorization",
    )
    await rule(
        engine,
        program,
        "event.type == 'capture'",
        [CreditAction(asset_id=asset.id, amount="event.amount", reference_id=auth_id, expires_at="8760h")],
        name="settle at capture",
    )
    await rule(
        engine,
        program,
        "event.type == 'void'",
        [VoidHoldAction(asset_id=asset.id, reference_id=auth_id)],
        name="void",
    )
    return program, asset


async def _state(engine: Engine, program: Any, asset: Any) -> tuple[str, str, str]:
    participant = await engine.get_participant_by_external_id("card")
    [balance] = [b for b in participant.balances if b.asset_id == asset.id]
    [wallet] = await engine.wallet_balances(program.id, asset.id)
    return balance.available, balance.held, wallet.available


async def test_authorization_then_capture_settles_with_the_delta(engine: Engine) -> None:
    program, asset = await _card_program(engine)
    auth = await send(engine, program, "card", {"type": "auth", "authorization_id": "A1", "amount": 40})
    assert auth.status == "COMPLETED", auth.error_message
    assert await _state(engine, program, asset) == ("0", "40", "960")
    participant = await engine.get_participant_by_external_id("card")
    [provisional] = await engine.lots(participant.id, asset.id, reference_id="A1")
    assert (provisional.status, provisional.provisional) == ("HELD", True)

    capture = await send(engine, program, "card", {"type": "capture", "authorization_id": "A1", "amount": 45})
    assert capture.status == "COMPLETED", capture.error_message
    assert await _state(engine, program, asset) == ("45", "0", "955")  # the delta of 5 came from the wallet
    chain = (await engine.list_journal_entries(reference_id="A1")).data
    assert [entry.action_type for entry in chain] == ["SETTLE", "CREDIT"]
    settle = chain[0]
    assert {(p.entity_type, p.bucket, p.amount) for p in settle.postings} == {
        ("PARTICIPANT", "HELD", "-40"),
        ("PARTICIPANT", "AVAILABLE", "45"),
        ("PROGRAM", "AVAILABLE", "-5"),
    }
    assert settle.description == "settled 45 against 40 held"
    lots = await engine.lots(participant.id, asset.id)
    assert sorted((lot.status, lot.remaining) for lot in lots) == [("AVAILABLE", "45"), ("CONSUMED", "0")]

    # A capture below the authorization gives the rest back to the wallet.
    await send(engine, program, "card", {"type": "auth", "authorization_id": "A2", "amount": 30})
    await send(engine, program, "card", {"type": "capture", "authorization_id": "A2", "amount": 10})
    assert await _state(engine, program, asset) == ("55", "0", "945")
    assert (await engine.verify()).ok


async def test_authorization_then_void_returns_to_the_wallet(engine: Engine) -> None:
    program, asset = await _card_program(engine)
    await send(engine, program, "card", {"type": "auth", "authorization_id": "V1", "amount": 25})
    voided = await send(engine, program, "card", {"type": "void", "authorization_id": "V1"})
    assert voided.status == "COMPLETED", voided.error_message
    assert await _state(engine, program, asset) == ("0", "0", "1000")
    chain = (await engine.list_journal_entries(reference_id="V1")).data
    assert [entry.action_type for entry in chain] == ["VOID_HOLD", "CREDIT"]
    # Voiding again, or an unknown authorization, fails that event and changes nothing.
    again = await send(engine, program, "card", {"type": "void", "authorization_id": "V1"})
    assert again.status == "FAILED"
    assert "VOID_HOLD" in (again.error_message or "")
    assert await _state(engine, program, asset) == ("0", "0", "1000")
    # A capture with no authorization is a plain credit that records the reference.
    await send(engine, program, "card", {"type": "capture", "authorization_id": "V9", "amount": 7})
    assert await _state(engine, program, asset) == ("7", "0", "993")
    assert [e.action_type for e in (await engine.list_journal_entries(reference_id="V9")).data] == ["CREDIT"]
    assert (await engine.verify()).ok


async def test_hold_and_release_actions_reserve_earned_points(engine: Engine) -> None:
    program, asset = await program_with_asset(engine, scale=0)
    await rule(engine, program, "event.type == 'earn'", [CreditAction(asset_id=asset.id, amount="event.amount")])
    await rule(
        engine,
        program,
        "event.type == 'reserve'",
        [HoldAction(asset_id=asset.id, amount="event.amount", reference_id="event.booking")],
    )
    await rule(
        engine, program, "event.type == 'unreserve'", [ReleaseAction(asset_id=asset.id, reference_id="event.booking")]
    )
    await send(engine, program, "guest", {"type": "earn", "amount": 100})
    reserved = await send(engine, program, "guest", {"type": "reserve", "amount": 60, "booking": "B7"})
    assert reserved.status == "COMPLETED", reserved.error_message
    participant = await engine.get_participant_by_external_id("guest")
    [balance] = participant.balances
    assert (balance.available, balance.held) == ("40", "60")
    too_much = await send(engine, program, "guest", {"type": "reserve", "amount": 41, "booking": "B8"})
    assert too_much.status == "FAILED"
    assert "insufficient" in (too_much.error_message or "")
    await send(engine, program, "guest", {"type": "unreserve", "booking": "B7"})
    [balance] = (await engine.get_participant(participant.id)).balances
    assert (balance.available, balance.held) == ("100", "0")
    chain = (await engine.list_journal_entries(reference_id="B7")).data
    assert [(entry.action_type, entry.rule_id is not None) for entry in chain] == [("RELEASE", True), ("HOLD", True)]
    assert (await engine.verify()).ok


async def test_a_provisional_credit_needs_a_lot_asset_and_a_reference(engine: Engine) -> None:
    program, simple = await program_with_asset(engine)
    with pytest.raises(ValidationFailed):
        await rule(
            engine, program, "true", [CreditAction(asset_id=simple.id, amount="1", bucket="HELD", reference_id="'x'")]
        )
    with pytest.raises(ValidationFailed):
        await rule(engine, program, "true", [VoidHoldAction(asset_id=simple.id, reference_id="'x'")])
