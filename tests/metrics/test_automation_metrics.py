"""scrip_automation_* move with fires: run and skipped fires, the SYSTEM events they created."""

from __future__ import annotations

from datetime import timedelta

from prometheus_client import CollectorRegistry

from scrip_actor import Engine, ParticipantCreate
from scrip_actor.automations import AutomationCreate, Trigger
from scrip_actor.metrics import EngineMetrics
from tests.conftest import ManualClock
from tests.helpers import program_with_asset


async def test_fires_and_events_are_counted(engine: Engine, clock: ManualClock) -> None:
    registry = CollectorRegistry()
    EngineMetrics(registry).attach(engine)
    program, _ = await program_with_asset(engine)
    for n in range(3):
        await engine.create_participant(ParticipantCreate(external_id=f"m{n}", program_id=program.id))
    await engine.automations.create(
        program.id,
        AutomationCreate(
            name="soon",
            trigger=Trigger(type="one_time", trigger_at=clock.now + timedelta(minutes=1)),
            scope="participants",
            event_name="hello",
        ),
    )
    assert registry.get_sample_value("scrip_automation_fan_outs_executing") == 0
    clock.advance(timedelta(minutes=1))
    await engine.automation_runs.run_due()
    await engine.wait_idle()
    assert registry.get_sample_value("scrip_automation_fires_total", {"outcome": "run"}) == 1
    assert registry.get_sample_value("scrip_automation_fires_total", {"outcome": "skipped"}) == 0
    assert registry.get_sample_value("scrip_automation_events_created_total") == 3
