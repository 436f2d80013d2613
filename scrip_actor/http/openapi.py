"""``/openapi.json``: an OpenAPI 3.1 document generated from the endpoint declarations.

Nothing here is written by hand per route: paths, methods, parameters, bodies and responses all come from the
same :class:`~scrip_actor.http.routing.Endpoint` list the app registers, and every schema comes from
``msgspec.json.schema_components`` over the same Structs the handlers decode and encode. So the document cannot
drift from the code; a test also checks it against Quart's ``url_map`` and validates it as OpenAPI 3.1.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

import msgspec

from scrip_actor.http.errors import ErrorBody
from scrip_actor.http.routing import Endpoint

__all__ = ["build_openapi"]

_REF = "#/components/schemas/{name}"
_PATH_PARAMETER = re.compile(r"{([a-z_]+)}")
_ERROR_MEANINGS = {
    400: "Invalid input (`bad_request`, `invalid_scale`); `details.fields` names the field",
    401: "Missing or unknown API key (`unauthorized`)",
    404: "Unknown resource (`not_found`)",
    409: "Conflict with the current state (`conflict`, `idempotency_conflict`)",
    413: "Body over the size limit (`payload_too_large`)",
    415: "Body is not `application/json` (`unsupported_media_type`)",
    422: "Not enough funds (`insufficient_balance`)",
    429: "Engine queues full (`too_many_requests`); see `Retry-After`",
    500: "A bug: reported with the request id (`internal_error`)",
}


def _operation_errors(endpoint: Endpoint) -> list[int]:
    statuses = [400, 404, 500]
    if endpoint.auth:
        statuses.append(401)
    if endpoint.body is not None:
        statuses += [413, 415]
    if endpoint.method != "GET":
        statuses += [409, 422, 429]
    return sorted(statuses)


def _schemas(endpoints: list[Endpoint]) -> tuple[dict[Any, Any], dict[Any, dict[str, Any]], dict[str, Any]]:
    """References for body/response types, inline object schemas for query types, and all components."""
    wire_types = [ErrorBody] + [t for e in endpoints for t in (e.body, e.response) if t is not None]
    query_types = [e.query for e in endpoints if e.query is not None]
    unique_wire = list(dict.fromkeys(wire_types))
    unique_query = list(dict.fromkeys(query_types))
    refs, components = msgspec.json.schema_components(unique_wire + unique_query, ref_template=_REF)
    query_schemas = {}
    for query_type, ref in zip(unique_query, refs[len(unique_wire) :], strict=True):
        name = ref["$ref"].rsplit("/", 1)[1]
        query_schemas[query_type] = components.pop(name)
    return dict(zip(unique_wire, refs[: len(unique_wire)], strict=True)), query_schemas, components


def _parameters(endpoint: Endpoint, query_schema: dict[str, Any] | None) -> list[dict[str, Any]]:
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in _PATH_PARAMETER.findall(endpoint.path)
    ]
    if query_schema is not None:
        required = set(query_schema.get("required", []))
        for name, schema in query_schema["properties"].items():
            parameter = {"name": name, "in": "query", "required": name in required, "schema": schema}
            if "description" in schema:
                parameter["description"] = schema["description"]
            parameters.append(parameter)
    return parameters


def _success(endpoint: Endpoint, refs: dict[Any, Any]) -> dict[str, Any]:
    if endpoint.status == 204:
        return {"description": "Done; no body"}
    if endpoint.response is None:
        return {"description": "OK", "content": {endpoint.content_type: {"schema": {"type": "string"}}}}
    return {"description": "OK", "content": {"application/json": {"schema": refs[endpoint.response]}}}


def _operation(endpoint: Endpoint, refs: dict[Any, Any], query_schema: dict[str, Any] | None) -> dict[str, Any]:
    doc = inspect.getdoc(endpoint.handler) or endpoint.summary
    responses: dict[str, Any] = {str(endpoint.status): _success(endpoint, refs)}
    for status in endpoint.also:
        responses[str(status)] = _success(endpoint, refs)
    error = {"content": {"application/json": {"schema": refs[ErrorBody]}}}
    for status in _operation_errors(endpoint):
        responses[str(status)] = {"description": _ERROR_MEANINGS[status], **error}
    operation: dict[str, Any] = {
        "operationId": endpoint.name,
        "summary": endpoint.summary,
        "description": doc,
        "tags": [endpoint.tag],
        "parameters": _parameters(endpoint, query_schema),
        "responses": responses,
        "security": [{"bearerAuth": []}, {"apiKeyHeader": []}] if endpoint.auth else [],
    }
    if endpoint.body is not None:
        operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": refs[endpoint.body]}}}
    return operation


def build_openapi(endpoints: list[Endpoint], *, title: str, version: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document for ``endpoints``."""
    refs, query_schemas, components = _schemas(endpoints)
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in endpoints:
        operation = _operation(endpoint, refs, query_schemas.get(endpoint.query))
        paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": version,
            "description": "A Scrip-compatible loyalty and rewards API. Authenticate every `/v1` request with "
            "`Authorization: Bearer <key>` or `X-API-Key: <key>`. Amounts are decimal strings, timestamps RFC 3339 "
            "UTC, ids UUIDs; lists page with `limit` (default 50, max 200) and `cursor`.",
        },
        "tags": [{"name": tag} for tag in dict.fromkeys(endpoint.tag for endpoint in endpoints)],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer"},
                "apiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            },
        },
    }
