"""verify recomputes every rule budget's ``consumed`` from the journal: a store whose budget record was tampered
with (or lost) is not OK, and says which budget and what the journal says (see test_verify_false_negatives.py)."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from scrip_actor import CreditAction
from scrip_actor.budgets import BudgetState
from scrip_actor.model import BudgetSpec
from scrip_actor.store import Store, encode
from scrip_actor.verify import verify
from tests.conftest import ManualClock
from tests.helpers import program_with_asset, rule, send
from tests.review.conftest import running


async def _healthy_store(data_dir: Path, clock: ManualClock) -> tuple[bytes, BudgetState]:
    async with running(data_dir, clock) as engine:
        program, asset = await program_with_asset(engine, scale=0)
        budgeted = await rule(
            engine,
            program,
            "true",
            [CreditAction(asset_id=asset.id, amount="10")],
            budgets=[BudgetSpec(asset_id=asset.id, limit="25")],
        )
        for number in range(3):  # 10, 10, then skipped
            assert (await send(engine, program, f"u{number}", {})).status == "COMPLETED"
        assert (await engine.verify()).ok
    store = Store(data_dir, map_size_bytes=1 << 30, sync=False, max_readers=16)
    try:
        ((key, raw),) = list(store.scan("rule_budgets"))
    finally:
        store.close()
    state = msgspec.json.decode(raw, type=BudgetState)
    assert (state.rule_id, state.consumed_minor) == (budgeted.id, 20)
    return key, state


def _write(data_dir: Path, key: bytes, value: bytes | None) -> None:
    store = Store(data_dir, map_size_bytes=1 << 30, sync=False, max_readers=16)
    try:
        store.write([[("rule_budgets", key, value)]])
    finally:
        store.close()


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"consumed_minor": 15}, "15 recorded as consumed, the journal has 20 issued"),
        ({"consumed_minor": 0}, "0 recorded as consumed, the journal has 20 issued"),
        ({"period_start_sequence": 2}, "20 recorded as consumed, the journal has 10 issued"),
        ({"period_start_sequence": 99}, "after the journal's end"),
        ({"asset_id": "another"}, "the rule has no such budget"),
    ],
)
async def test_a_tampered_budget_record_is_reported(
    tmp_path: Path, clock: ManualClock, change: dict[str, object], problem: str
) -> None:
    data_dir = tmp_path / "d"
    key, state = await _healthy_store(data_dir, clock)
    tampered = msgspec.structs.replace(state, **change)
    new_key = key if "asset_id" not in change else state.rule_id.encode() + b"\0another"
    _write(data_dir, new_key, encode(tampered))
    report = verify(str(data_dir))
    assert not report.ok
    assert any(problem in text for text in report.problems), report.problems


async def test_a_lost_budget_record_is_reported(tmp_path: Path, clock: ManualClock) -> None:
    data_dir = tmp_path / "d"
    key, _ = await _healthy_store(data_dir, clock)
    _write(data_dir, key, None)
    report = verify(str(data_dir))
    assert any("no record of what it consumed" in text for text in report.problems), report.problems
