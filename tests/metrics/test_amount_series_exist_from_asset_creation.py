"""The issued, redeemed and expired series of an asset exist at 0 from its creation, and again after a restart.

Without them a dashboard shows "no data" for an asset's redeemed and expired panels until its first redemption
or expiry, which reads as a broken exporter.
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

KINDS = ("issued", "redeemed", "expired")


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
        (sample.name, sample.labels.get("asset")): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    for kind in KINDS:
        assert samples.get((f"scrip_amount_{kind}_total", asset["id"])) == 0.0, (kind, text)


async def test_the_series_are_there_at_zero_after_a_restart(tmp_path: Path, clock: ManualClock) -> None:
    config = small_config(tmp_path / "data")
    async with open_engine(config=config, clock=clock) as engine:
        _, asset = await program_with_asset(engine)
    async with open_engine(config=config, clock=clock) as engine:
        registry = CollectorRegistry()
        EngineMetrics(registry).attach(engine)
        for kind in KINDS:
            assert registry.get_sample_value(f"scrip_amount_{kind}_total", {"asset": asset.id}) == 0.0, kind
