"""Acceptance 4: ``/openapi.json`` is valid OpenAPI 3.1 and lists exactly the routes the app serves; ``/docs``
renders every operation without fetching anything. Both need a key (issue 6: only ``/healthz`` is open)."""

from __future__ import annotations

import re
from typing import Any

import httpx
from openapi_spec_validator import validate

from scrip_actor.http.app import create_app
from scrip_actor.http.auth import ApiKeys
from scrip_actor.http.console import CONSOLE_ENDPOINTS
from tests.http.conftest import Api

_IGNORED_METHODS = {"HEAD", "OPTIONS"}


async def _document(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


async def test_document_is_valid_openapi_31(api: Api) -> None:
    document = await _document(api.client)
    assert document["openapi"] == "3.1.0"
    validate(document)


async def test_document_lists_every_served_route(api: Api) -> None:
    document = await _document(api.client)
    documented = {(method.upper(), path) for path, methods in document["paths"].items() for method in methods}
    app = create_app(api.engine, ApiKeys.of("k"))
    served = {
        (method, re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule))
        for rule in app.url_map.iter_rules()
        # Static files (Quart's own, and the console's pages and scripts) are not API operations.
        if rule.endpoint != "static" and rule.endpoint not in CONSOLE_ENDPOINTS
        for method in (rule.methods or set()) - _IGNORED_METHODS
    }
    assert served == documented
    assert (
        len(served) == 105
    )  # grows with every new route; update deliberately (issue 12: +5 balance operations, +5 redemptions, +5 catalog,
    # +1 transfers; issue 13: +activity/history, +participant events, +activity/state-history, +5 tier definitions,
    # +4 state/tiers, +1 reset-budget, +3 reports; issue 14: +9 automations, +9 webhooks; issue 15: +5 backtests)


async def test_schemas_come_from_the_handlers_types(api: Api) -> None:
    document = await _document(api.client)
    schemas = document["components"]["schemas"]
    create = document["paths"]["/v1/programs"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ProgramCreate"
    }
    assert schemas["ProgramCreate"]["additionalProperties"] is False
    assert set(schemas["ProgramCreate"]["required"]) == {"name"}
    listing = document["paths"]["/v1/events"]["get"]
    assert {p["name"] for p in listing["parameters"]} >= {"limit", "cursor", "program_id", "from", "to"}
    assert create["security"] and document["paths"]["/healthz"]["get"]["security"] == []
    assert "413" in create["responses"] and "401" in create["responses"]


async def test_docs_page_is_self_contained(api: Api) -> None:
    document = await _document(api.client)
    response = await api.client.get("/docs")
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/html")
    page = response.text
    assert "<script" not in page and "http://" not in page and "https://" not in page
    for path in document["paths"]:
        assert path in page
    assert 'id="schema-ProgramCreate"' in page


async def test_a_browser_opens_the_docs_without_a_key_but_not_the_api(anonymous: httpx.AsyncClient) -> None:
    """A browser's address bar sends no Authorization header: the description is open, every route it lists is not."""
    docs = await anonymous.get("/docs")
    assert docs.status_code == 200 and docs.headers["Content-Type"].startswith("text/html")
    document = await anonymous.get("/openapi.json")
    assert document.status_code == 200
    keyed = [
        (path, method)
        for path, methods in document.json()["paths"].items()
        for method, operation in methods.items()
        if operation["security"]
    ]
    assert {path for path, _ in keyed} >= {"/v1/programs", "/v1/events", "/metrics"}
    assert not any(
        path.startswith("/v1")
        for path, methods in document.json()["paths"].items()
        for m in methods
        if (path, m) not in keyed
    ), "every /v1 route is documented as keyed"
    for path in ("/v1/programs", "/v1/events", "/v1/participants", "/metrics"):
        response = await anonymous.get(path)
        assert response.status_code == 401 and response.json()["code"] == "unauthorized", path


# The hosted reference's query parameters per list (docs/http.md#lists): the document must offer each of them.
_HOSTED_LIST_PARAMETERS = {
    "/v1/programs": {"include_archived", "status", "search", "sort_by", "sort_dir"},
    "/v1/assets": {"program_id", "status", "search"},
    "/v1/rules": {"program_id", "status", "include_archived", "search", "sort_by", "sort_dir"},
    "/v1/rules/{rule_id}/history": {"change_type", "from", "to"},
    "/v1/participants": {"external_id", "program_id", "status", "search", "from", "to", "sort_by", "sort_dir"},
    "/v1/participants/{participant_id}/balances": {"asset_id"},
    "/v1/participants/{participant_id}/activity/history": {
        "asset_id",
        "bucket",
        "from",
        "to",
        "event_from",
        "event_to",
    },
    "/v1/participants/{participant_id}/events": {"program_id", "status", "from", "to", "event_from", "event_to"},
    "/v1/participants/{participant_id}/redemptions": {"status", "reward_catalog_item_id", "from", "to"},
    "/v1/redemptions/{redemption_id}/reversals": set(),
    "/v1/programs/{program_id}/automations": {"trigger_type", "scope", "status", "source", "search"},
    "/v1/programs/{program_id}/automations/{automation_id}/subscriptions": {"status"},
    "/v1/events": {
        "program_id",
        "status",
        "event_type",
        "participant_id",
        "external_id",
        "rule_id",
        "from",
        "to",
        "event_from",
        "event_to",
        "sort_by",
        "sort_dir",
    },
    "/v1/journal-entries": {
        "program_id",
        "event_id",
        "rule_id",
        "participant_id",
        "group_id",
        "external_id",
        "asset_id",
        "bucket",
        "from",
        "to",
        "min_amount",
        "max_amount",
        "action_type",
        "reference_id",
    },
}


async def test_every_hosted_list_parameter_is_documented(api: Api) -> None:
    document = await _document(api.client)
    for path, expected in _HOSTED_LIST_PARAMETERS.items():
        documented = {parameter["name"] for parameter in document["paths"][path]["get"].get("parameters", [])}
        assert documented >= expected | {"limit", "cursor"}, path
    one = document["paths"]["/v1/events/{event_id}"]["get"]
    assert "include_skipped" in {parameter["name"] for parameter in one["parameters"]}
    evaluation = document["components"]["schemas"]["EvaluationRecord"]["properties"]
    assert set(evaluation["status"]["enum"]) == {"SUCCESS", "SKIPPED", "SKIPPED_ERROR", "SKIPPED_TIMEOUT"}
