"""``/metrics`` over HTTP: it parses with prometheus_client's own parser and carries every family we document."""

from __future__ import annotations

from typing import Any

from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from tests.http.conftest import Api


def scrape(text: str) -> dict[str, Metric]:
    """Families by name, parsed the way Prometheus would read them."""
    return {family.name: family for family in text_string_to_metric_families(text)}


def sample(families: dict[str, Metric], family: str, name: str, **labels: str) -> float:
    """One sample's value (0 when absent)."""
    for found in families[family].samples:
        if found.name == name and all(found.labels.get(key) == value for key, value in labels.items()):
            return found.value
    return 0.0


async def drive(api: Api) -> dict[str, Any]:
    """A program with an asset and a rule, two single events and a batch of three, all processed."""
    program = await api.ok("POST", "/v1/programs", 201, json={"name": "Metrics"})
    asset = await api.ok(
        "POST",
        "/v1/assets",
        201,
        json={
            "program_id": program["id"],
            "name": "Points",
            "symbol": "PTS",
            "inventory_mode": "SIMPLE",
            "issuance_policy": "UNLIMITED",
            "scale": 2,
        },
    )
    rule = await api.ok(
        "POST",
        "/v1/rules",
        201,
        json={
            "program_id": program["id"],
            "name": "buy",
            "condition": "event.type == 'buy'",
            "actions": [{"type": "CREDIT", "asset_id": asset["id"], "amount": "1.25"}],
        },
    )
    events = [
        {"program_id": program["id"], "external_id": f"u{n}", "idempotency_key": f"k{n}", "event_data": {"type": "buy"}}
        for n in range(5)
    ]
    ids = [(await api.ok("POST", "/v1/events", 202, json=event))["id"] for event in events[:2]]
    batch = await api.ok("POST", "/v1/events/batch", 202, json={"events": events[2:]})
    ids += [item["event"]["id"] for item in batch["results"]]
    for event_id in ids:
        await api.wait_event(event_id)
    await api.engine.wait_idle()
    return {"program": program, "asset": asset, "rule": rule}


async def test_metrics_parse_and_move(api: Api) -> None:
    made = await drive(api)
    response = await api.client.get("/metrics")
    assert response.status_code == 200
    families = scrape(response.text)
    program, asset, rule = made["program"]["id"], made["asset"]["id"], made["rule"]["id"]
    assert sample(families, "scrip_events_received", "scrip_events_received_total", program=program) == 5
    assert (
        sample(families, "scrip_events_processed", "scrip_events_processed_total", program=program, outcome="completed")
        == 5
    )
    assert sample(families, "scrip_rule_matches", "scrip_rule_matches_total", program=program, rule=rule) == 5
    assert sample(families, "scrip_amount_issued", "scrip_amount_issued_total", asset=asset) == 6.25
    assert sample(families, "scrip_event_processing_seconds", "scrip_event_processing_seconds_count") == 5
    assert sample(families, "scrip_engine_events_accepted", "scrip_engine_events_accepted_total") == 5
    assert sample(families, "scrip_http_requests", "scrip_http_requests_total", route="/v1/events", status="202") == 2
    assert (
        sample(families, "scrip_http_requests", "scrip_http_requests_total", route="/v1/events/batch", status="202")
        == 1
    )
    assert (
        sample(
            families,
            "scrip_http_request_duration_seconds",
            "scrip_http_request_duration_seconds_count",
            route="/v1/events",
        )
        == 2
    )
    assert families["scrip_commit_duration_seconds"].type == "histogram"
    assert sample(families, "process_resident_memory_bytes", "process_resident_memory_bytes") > 0
    assert "python_info" in families


async def test_no_identifier_becomes_a_label(api: Api) -> None:
    await drive(api)
    text = (await api.client.get("/metrics")).text
    for family in text_string_to_metric_families(text):
        for found in family.samples:
            assert not set(found.labels) & {"participant", "participant_id", "external_id", "event", "event_id"}
    assert "u3" not in text and "k3" not in text
