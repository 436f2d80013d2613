"""EngineMetrics on an embedded engine: processing events moves the expected series, and hooks chain."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

from prometheus_client import CollectorRegistry
from prometheus_client.core import Metric

from scrip_actor import CreditAction, DebitAction, Engine, Event
from scrip_actor.metrics import EngineMetrics
from tests.conftest import ManualClock
from tests.helpers import program_with_asset, rule, send


def _value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    value = registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


async def test_events_rules_amounts_and_latency_move(engine: Engine, clock: ManualClock) -> None:
    seen: list[str] = []
    engine.on_event_processed = lambda event: seen.append(event.id)  # an earlier hook must keep running
    registry = CollectorRegistry()
    metrics = EngineMetrics(registry).attach(engine)
    program, asset = await program_with_asset(engine, mode="LOT", scale=2)
    earn = await rule(
        engine, program, "event.type == 'buy'", [CreditAction(asset_id=asset.id, amount="12.50", expires_at="24h")]
    )
    spend = await rule(
        engine, program, "event.type == 'spend'", [DebitAction(asset_id=asset.id, amount="event.points")]
    )
    outcomes: list[Event] = [
        await send(engine, program, "u1", {"type": "buy"}),
        await send(engine, program, "u1", {"type": "buy"}),
        await send(engine, program, "u1", {"type": "other"}),
        await send(engine, program, "u1", {"type": "spend", "points": 5}),
        await send(engine, program, "u1", {"type": "spend", "points": 1000}),  # insufficient: FAILED
    ]
    assert [event.status for event in outcomes] == ["COMPLETED"] * 4 + ["FAILED"]
    assert seen == [event.id for event in outcomes]

    assert _value(registry, "scrip_events_received_total", program=program.id) == 5
    assert _value(registry, "scrip_events_processed_total", program=program.id, outcome="completed") == 4
    assert _value(registry, "scrip_events_processed_total", program=program.id, outcome="failed") == 1
    assert _value(registry, "scrip_rule_matches_total", program=program.id, rule=earn.id) == 2
    assert _value(registry, "scrip_rule_matches_total", program=program.id, rule=spend.id) == 2
    assert _value(registry, "scrip_amount_issued_total", asset=asset.id) == 25.0
    assert _value(registry, "scrip_amount_redeemed_total", asset=asset.id) == 5.0
    assert _value(registry, "scrip_event_processing_seconds_count") == 5
    assert _value(registry, "scrip_commit_batch_records_count") >= 1
    assert _value(registry, "scrip_commit_duration_seconds_sum") > 0
    assert metrics.tracked_inflight() == 0  # latency bookkeeping is cleared as events finish

    clock.advance(timedelta(hours=25))  # the rest of both lots (20.00) expires on its own
    engine.sweep_due()
    await engine.wait_idle()
    assert _value(registry, "scrip_amount_expired_total", asset=asset.id) == 20.0


async def test_statistics_are_read_at_scrape_time(engine: Engine) -> None:
    registry = CollectorRegistry()
    EngineMetrics(registry).attach(engine)
    program, _ = await program_with_asset(engine)
    await send(engine, program, "u1", {"type": "x"}, key="same")
    await send(engine, program, "u1", {"type": "x"}, key="same")  # an idempotent replay
    assert _value(registry, "scrip_engine_events_accepted_total") == 1
    assert _value(registry, "scrip_engine_idempotent_replays_total") == 1
    assert _value(registry, "scrip_engine_events_inflight") == 0
    assert _value(registry, "scrip_engine_actor_activations_total") >= 1
    assert _value(registry, "scrip_engine_writer_commits_total") >= 1
    assert _value(registry, "scrip_engine_writer_map_trims_total") == engine.statistics().writer_map_trims
    assert _value(registry, "scrip_events_received_total", program=program.id) == 1


def test_histogram_buckets_are_cumulative_and_inclusive() -> None:
    registry = CollectorRegistry()
    metrics = EngineMetrics(registry)
    for records in (1, 2, 3, 5000, 9000):
        metrics.commit(records, 0.001)
    registry.register(_Only(metrics))
    assert _value(registry, "scrip_commit_batch_records_bucket", le="1.0") == 1  # le is inclusive
    assert _value(registry, "scrip_commit_batch_records_bucket", le="5.0") == 3
    assert _value(registry, "scrip_commit_batch_records_bucket", le="5000.0") == 4
    assert _value(registry, "scrip_commit_batch_records_bucket", le="+Inf") == 5
    assert _value(registry, "scrip_commit_batch_records_count") == 5
    assert _value(registry, "scrip_commit_batch_records_sum") == 14006


class _Only:
    """A collector of one EngineMetrics histogram, without an engine."""

    def __init__(self, metrics: EngineMetrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        yield self._metrics.commit_records.family()
