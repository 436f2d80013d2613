"""A hostile rule cannot hold the event loop: it runs out of the event's CEL cost budget and is skipped.

The event still completes, the other rules still apply, and the whole event takes milliseconds, not minutes.
"""

from __future__ import annotations

import time

import msgspec

from scrip_actor import CreditAction, Engine, open_engine
from scrip_actor.config import Limits
from tests.conftest import ManualClock, small_config
from tests.helpers import available, program_with_asset, rule, send

BIG_TEXT = "ab" * 30_000  # 60 KB: within event_data_bytes_max
HOSTILE = "[1,2,3].map(a, [1,2,3].map(b, event.s + event.s + event.s)).exists(x, x.exists(y, y == 'z'))"
HOSTILE_NESTED = "event.l.all(a, event.l.all(b, event.l.all(c, true)))"
#: Without the budget these conditions take minutes; with it, a few ms each (a loaded CI machine gets slack).
EVENT_WALL_BOUND_S = 0.5


async def test_hostile_rules_are_skipped_while_the_event_completes(engine: Engine) -> None:
    program, asset = await program_with_asset(engine)
    hostile = await rule(engine, program, HOSTILE, [CreditAction(asset_id=asset.id, amount="1000")], order=1)
    nested = await rule(engine, program, HOSTILE_NESTED, [CreditAction(asset_id=asset.id, amount="1000")], order=2)
    await rule(engine, program, "event.type == 'purchase'", [CreditAction(asset_id=asset.id, amount="10")], order=3)
    await send(engine, program, "warm", {"type": "other"})  # participant creation etc. outside the timing
    started = time.perf_counter()
    event = await send(engine, program, "u1", {"type": "purchase", "s": BIG_TEXT, "l": list(range(300))})
    elapsed_s = time.perf_counter() - started
    assert event.status == "COMPLETED", event.error_message
    assert elapsed_s < EVENT_WALL_BOUND_S, f"{elapsed_s * 1e3:.0f} ms"
    by_rule = {e.rule_id: e for e in event.rule_evaluations}
    for skipped in (hostile, nested):
        assert by_rule[skipped.id].status == "SKIPPED"
        assert by_rule[skipped.id].reason is not None
        assert by_rule[skipped.id].reason.startswith("CONDITION_COST_EXCEEDED: evaluation cost limit exceeded")
    assert [e.status for e in event.rule_evaluations] == ["SKIPPED", "SKIPPED", "MATCHED"]
    assert await available(engine, "u1", asset) == "10.00"


async def test_one_budget_per_event_shared_by_all_its_rules(tmp_path: object, clock: ManualClock) -> None:
    config = small_config(tmp_path / "data")  # type: ignore[operator]
    config = msgspec.structs.replace(config, limits=msgspec.structs.replace(Limits(), cel_cost_per_event_max=500))
    async with open_engine(config=config, clock=clock) as engine:
        program, asset = await program_with_asset(engine)
        for order in range(1, 6):  # each: (30 elements + 1) * weight 4 (the iteration and `x < 0`) = 124 units
            credit = [CreditAction(asset_id=asset.id, amount="1")]
            await rule(engine, program, "event.l.exists(x, x < 0)", credit, name=f"rule {order}", order=order)
        big = await send(engine, program, "u1", {"l": list(range(300))})
        small = await send(engine, program, "u2", {"l": [*range(29), -1]})
        again = await send(engine, program, "u2", {"l": [*range(29), -1]})  # a new event: a new budget
        await engine.wait_idle()
        assert (await engine.verify()).ok
        assert await available(engine, "u2", asset) == "8.00"
    assert big.status == "COMPLETED"
    assert {(e.status, (e.reason or "")[:23]) for e in big.rule_evaluations} == {("SKIPPED", "CONDITION_COST_EXCEEDED")}
    # 4 * 124 = 496 units fit in 500; the fifth rule finds the event's budget spent.
    assert [e.status for e in small.rule_evaluations] == ["MATCHED"] * 4 + ["SKIPPED"]
    assert [e.status for e in again.rule_evaluations] == ["MATCHED"] * 4 + ["SKIPPED"]
