"""Operational routes: ``/healthz``, ``/openapi.json`` and ``/docs`` (no key), and ``/metrics`` (key required).

The API description is open so a browser can read it: its address bar sends no ``Authorization`` header, so a
keyed ``/docs`` could only be read through curl (issue 10). Issue 6 had kept it behind the key as "a map for an
attacker"; but it is a static, non-secret text (the same as the published source and docs/http.md), it carries no
data, and every route it describes still needs the key, so opening it weakens nothing an attacker could use.
``/metrics`` stays keyed: its figures are about this deployment's traffic and data.
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
            auth=False,
        ),
        Endpoint(
            "GET",
            "/docs",
            api_docs,
            "HTML API reference",
            "Operations",
            content_type="text/html; charset=utf-8",
            auth=False,
        ),
    ]
