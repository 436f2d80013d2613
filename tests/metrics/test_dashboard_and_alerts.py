"""The Grafana dashboard and the Prometheus alert rules: well formed, and naming only series the server exports.

The exported names come from a real ``/metrics`` scrape, so renaming a metric without updating the dashboard or
the alerts fails here instead of leaving an empty panel or an alert that can never fire.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.http.conftest import Api
from tests.metrics.test_http_metrics import drive

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "config" / "grafana" / "scrip-dashboard.json"
ALERTS = ROOT / "config" / "prometheus" / "alerts.yml"
METRIC_NAME = re.compile(r"\b((?:scrip|process|python)_[a-z0-9_]+)\b")
# Sample names a family of each type exposes, beyond the family name itself.
SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created"), "gauge": ("",)}


def _alert_rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(ALERTS.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def _panel_exprs(dashboard: dict[str, Any]) -> list[str]:
    return [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]


async def _exported_names(api: Api) -> set[str]:
    await drive(api)
    names: set[str] = set()
    for family in text_string_to_metric_families((await api.client.get("/metrics")).text):
        names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ("",)))
        names.update(found.name for found in family.samples)
    return names


def test_alert_rules_are_valid_yaml_with_the_expected_groups() -> None:
    document = yaml.safe_load(ALERTS.read_text())
    assert [group["name"] for group in document["groups"]] == [
        "scrip-failed-events",
        "scrip-commit-latency",
        "scrip-backpressure",
        "scrip-webhooks",
        "scrip-scrape",
    ]
    rules = _alert_rules()
    assert len({rule["alert"] for rule in rules}) == len(rules)
    for rule in rules:
        assert {"alert", "expr", "for", "labels", "annotations"} <= set(rule), rule
        assert re.fullmatch(r"\d+[smh]", rule["for"]), rule
        assert rule["labels"]["severity"] in ("page", "ticket"), rule
        assert {"summary", "description", "runbook"} <= set(rule["annotations"]), rule
    assert any(rule["expr"].strip() == 'up{job="scrip"} == 0' for rule in rules)


def test_dashboard_is_an_importable_grafana_dashboard() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert [item["name"] for item in dashboard["__inputs"]] == ["DS_PROMETHEUS"]
    assert dashboard["uid"] and dashboard["title"] and dashboard["id"] is None
    rows = [panel["title"] for panel in dashboard["panels"] if panel["type"] == "row"]
    assert rows == [
        "Throughput",
        "Latency",
        "Failures",
        "Backpressure",
        "Actors",
        "Commit health",
        "Money out",
        "Automations",
        "Webhooks",
    ]
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${DS_PROMETHEUS}", panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["expr"].count("(") == target["expr"].count(")"), target["expr"]


async def test_dashboard_and_alerts_name_only_exported_series(api: Api) -> None:
    exported = await _exported_names(api)
    dashboard = json.loads(DASHBOARD.read_text())
    queries = _panel_exprs(dashboard) + [item["definition"] for item in dashboard["templating"]["list"]]
    queries += [rule["expr"] for rule in _alert_rules()]
    referenced = {name for query in queries for name in METRIC_NAME.findall(query)}
    assert referenced, "no metric names found in the dashboard or the alerts"
    assert referenced - exported == set()
