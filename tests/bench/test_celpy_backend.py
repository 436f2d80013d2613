"""The cel-python baseline backend: same answers as our compiler, so the benchmark compares like with like."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from scrip_actor import Config, CounterAction, CreditAction, EventSubmit, TagAction, open_engine
from scrip_actor.cel import CelCompileError, CelEvaluationError, compile_expression
from scrip_actor.cel.celpy_backend import compile_expression_celpy
from scrip_actor.config import EngineSettings, StorageSettings
from tests.helpers import program_with_asset, rule

_VARIABLES: dict[str, Any] = {
    "event": {"type": "purchase", "amount": 105.0, "sku": "ECO-7", "tags": ["a", "b"]},
    "participant": {"tags": ["gold"], "counters": {"visits": 3.0}},
    "now": datetime(2026, 1, 1, tzinfo=UTC),
}


@pytest.mark.parametrize(
    "text",
    [
        "event.amount >= 100.0 && event.type == 'purchase'",
        "round(event.amount * 0.05, 2)",
        "sets.contains(participant.tags, ['gold'])",
        "sets.intersects(event.tags, ['x', 'b'])",
        "get(participant.counters, 'visits', 0.0) + 1.0",
        "event.sku.startsWith('ECO-') && size(event.tags) == 2",
        "'gold' in participant.tags",
        "now",
        "event",
    ],
)
def test_same_value_as_compiled(text: str) -> None:
    assert compile_expression_celpy(text).evaluate(_VARIABLES) == compile_expression(text).evaluate(_VARIABLES)


def test_errors_are_ours() -> None:
    with pytest.raises(CelEvaluationError):
        compile_expression_celpy("event.missing == 1.0").evaluate(_VARIABLES)
    with pytest.raises(CelEvaluationError):
        compile_expression_celpy("round(event.amount, 99)").evaluate(_VARIABLES)
    with pytest.raises(CelCompileError) as error:
        compile_expression_celpy("event.amount >= ")
    assert error.value.line == 1 and error.value.column > 1


async def _outcomes(data_dir: Path, backend: str) -> list[tuple[str, list[str], str]]:
    """Run three rules over a few events; return (status, rule statuses, balance) per event."""
    config = Config(
        storage=StorageSettings(data_dir=str(data_dir), sync=False, lmdb_map_size_bytes=1 << 28),
        engine=EngineSettings(cel_backend=backend),
    )  # type: ignore[arg-type]
    async with open_engine(config=config) as engine:
        program, asset = await program_with_asset(engine)
        await rule(
            engine,
            program,
            "event.type == 'purchase' && event.amount >= 10.0",
            [
                CreditAction(asset_id=asset.id, amount="round(event.amount * 0.05, 2)"),
                CounterAction(key="visits", value="1"),
            ],
        )
        await rule(
            engine,
            program,
            "get(participant.counters, 'visits', 0.0) >= 2.0",
            [TagAction(tag="regular")],
            stop_after_match=True,
        )
        await rule(
            engine,
            program,
            "sets.contains(participant.tags, ['regular'])",
            [CreditAction(asset_id=asset.id, amount="1")],
        )
        outcomes = []
        for number, data in enumerate(
            [
                {"type": "purchase", "amount": 105},
                {"type": "purchase", "amount": 5.0},
                {"type": "purchase", "amount": 20.5},
                {"type": "visit"},
                {"type": "purchase"},
            ]
        ):
            submitted = await engine.submit(
                EventSubmit(program_id=program.id, external_id="u1", idempotency_key=f"k{number}", event_data=data)
            )
            await engine.wait_idle()
            event = await engine.get_event(submitted.id)
            participant = await engine.get_participant_by_external_id("u1")
            outcomes.append(
                (event.status, [e.status for e in event.rule_evaluations], participant.balances[0].available)
            )
        return outcomes


async def test_engine_outcomes_match_compiled_backend(tmp_path: Path) -> None:
    assert await _outcomes(tmp_path / "celpy", "celpy") == await _outcomes(tmp_path / "compiled", "compiled")
