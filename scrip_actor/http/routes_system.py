"""Operational routes: ``/healthz`` (no key), and ``/metrics``, ``/openapi.json`` and ``/docs`` (key required).

Only ``/healthz`` is open, as issue 6 asks: the API description names every route and field, which is a map for an
attacker and of no use to anyone who cannot call the API anyway. Read the docs with the key:
``curl -H "Authorization: Bearer $KEY" http://127.0.0.1:8080/docs > api.html``.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from scrip_actor.http.docs_page import render_docs
from scrip_actor.http.metrics import CONTENT_TYPE, HttpMetrics
from scrip_actor.http.openapi import build_openapi
from scrip_actor.http.routing import Call, Endpoint
from scrip_actor.http.schemas import Health

__all__ = ["endpoints", "openapi_document"]


def _version() -> str:
    try:
        return version("scrip-actor")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree without an install
        return "0.0.0"


def openapi_document(endpoints: list[Endpoint]) -> dict[str, Any]:
    """The OpenAPI document of these endpoints."""
    return build_openapi(endpoints, title="scrip-actor API", version=_version())


def endpoints(metrics: HttpMetrics, document: Callable[[], dict[str, Any]]) -> list[Endpoint]:
    """The operational routes; ``document`` returns the OpenAPI document once the app has built it."""
    cache: dict[str, bytes] = {}

    async def healthz(call: Call) -> Health:
        """The process is up and its engine is open. Needs no key: meant for load balancers and orchestrators."""
        return Health()

    async def prometheus_metrics(call: Call) -> bytes:
        """Prometheus text: HTTP requests by route template and status, latency, engine statistics."""
        return metrics.render()

    async def openapi_json(call: Call) -> Any:
        """This document: OpenAPI 3.1, generated from the same msgspec types the handlers use."""
        return document()

    async def api_docs(call: Call) -> bytes:
        """A readable HTML page of the API, built from ``/openapi.json``; works offline."""
        if "docs" not in cache:
            cache["docs"] = render_docs(document()).encode()
        return cache["docs"]

    return [
        Endpoint("GET", "/healthz", healthz, "Health check", "Operations", response=Health, auth=False),
        Endpoint("GET", "/metrics", prometheus_metrics, "Prometheus metrics", "Operations", content_type=CONTENT_TYPE),
        Endpoint(
            "GET",
            "/openapi.json",
            openapi_json,
            "OpenAPI 3.1 document",
            "Operations",
            response=dict[str, Any],
        ),
        Endpoint(
            "GET",
            "/docs",
            api_docs,
            "HTML API reference",
            "Operations",
            content_type="text/html; charset=utf-8",
        ),
    ]
