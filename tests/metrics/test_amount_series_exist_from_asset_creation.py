"""Every per-asset series (issued, redeemed, expired and the money-out ones) exists at 0 from the asset's
creation, and again after a restart.

Without them a dashboard shows "no data" for an asset's redeemed, expired or held panels until its first
redemption, expiry or hold, which reads as a broken exporter.
"""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from scrip_actor import open_engine
from scrip_actor.metrics import EngineMetrics
from tests.conftest import ManualClock, small_config
from tests.helpers import program_with_asset
from tests.http.conftest import Api

# (sample name, labels beyond asset) of every per-asset series.
SERIES: list[tuple[str, dict[str, str]]] = [
    *(
        (f"scrip_amount_{kind}_total", {})
        for kind in ("issued", "redeemed", "expired", "held", "released", "forfeited", "voided", "settled")
    ),
    ("scrip_redemptions_total", {}),
    ("scrip_redemption_amount_total", {}),
    ("scrip_redemption_reversals_total", {}),
    ("scrip_redemption_reversed_amount_total", {}),
    *(
        (name, {"direction": direction})
        for name in ("scrip_adjustments_total", "scrip_amount_adjusted_total")
        for direction in ("credit", "debit")
    ),
]


async def test_metrics_show_a_new_assets_amounts_at_zero(api: Api) -> None:
    program = await api.ok("POST", "/v1/programs", 201, json={"name": "Fresh"})
    asset = await api.ok(
        "POST",
        "/v1/assets",
        201,
        json={
            "program_id": program["id"],
            "name": "Points",
            "symbol": "PTS",
            "inventory_mode": "LOT",
            "issuance_policy": "UNLIMITED",
            "scale": 2,
        },
    )
    text = (await api.client.get("/metrics")).text
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    for name, labels in SERIES:
        key = (name, tuple(sorted({"asset": asset["id"], **labels}.items())))
        assert samples.get(key) == 0.0, (name, labels, text)


async def test_the_series_are_there_at_zero_after_a_restart(tmp_path: Path, clock: ManualClock) -> None:
    config = small_config(tmp_path / "data")
    async with open_engine(config=config, clock=clock) as engine:
        _, asset = await program_with_asset(engine)
    async with open_engine(config=config, clock=clock) as engine:
        registry = CollectorRegistry()
        EngineMetrics(registry).attach(engine)
        for name, labels in SERIES:
            assert registry.get_sample_value(name, {"asset": asset.id, **labels}) == 0.0, (name, labels)
