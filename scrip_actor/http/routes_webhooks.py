"""Webhook endpoints (``/v1/webhook-endpoints``) and their deliveries (``/v1/webhook-deliveries``), hosted §3.15.

Each handler decodes, makes one call on ``engine.webhooks`` and encodes (scrip_actor/webhooks, docs/webhooks.md).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from msgspec import Meta, Struct

from scrip_actor.http.routing import Call, Endpoint, ListOf, listing
from scrip_actor.webhooks import (
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEndpointCreate,
    WebhookEndpointUpdate,
    WebhookEndpointWithSecret,
)

__all__ = ["ENDPOINTS"]

_ENDPOINTS = "/v1/webhook-endpoints"
_ONE = _ENDPOINTS + "/{endpoint_id}"
_DELIVERY = "/v1/webhook-deliveries/{delivery_id}"
_Limit = Annotated[int, Meta(ge=1, le=100, description="page size, 1-100 (default 20)")]


class EndpointQuery(Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """Endpoints newest first, archived left out; ``status`` keeps one status."""

    status: Literal["ACTIVE", "DISABLED"] | None = None
    limit: _Limit = 20
    cursor: str | None = None


class DeliveryQuery(Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """An endpoint's deliveries newest first; ``status`` keeps one status."""

    status: Literal["PENDING", "SENDING", "DELIVERED", "FAILED"] | None = None
    limit: _Limit = 20
    cursor: str | None = None


async def create_webhook_endpoint(call: Call) -> WebhookEndpointWithSecret:
    """Register an endpoint; the answer carries its secret, shown this once."""
    endpoint: WebhookEndpointWithSecret = await call.engine.webhooks.create(call.body)
    return endpoint


async def list_webhook_endpoints(call: Call) -> ListOf[Any]:
    """Endpoints, newest first (no secrets)."""
    query: EndpointQuery = call.query
    return listing(call.engine.webhooks.list(status=query.status, limit=query.limit, cursor=query.cursor))


async def get_webhook_endpoint(call: Call) -> WebhookEndpoint:
    """One endpoint (no secret)."""
    endpoint: WebhookEndpoint = call.engine.webhooks.get(call.path["endpoint_id"])
    return endpoint


async def update_webhook_endpoint(call: Call) -> WebhookEndpoint:
    """Change url, description, enabled_events (replaced), metadata or status (ACTIVE / DISABLED)."""
    endpoint: WebhookEndpoint = await call.engine.webhooks.update(call.path["endpoint_id"], call.body)
    return endpoint


async def delete_webhook_endpoint(call: Call) -> WebhookEndpoint:
    """Archive an endpoint: nothing more is sent to it; its deliveries still answer."""
    endpoint: WebhookEndpoint = await call.engine.webhooks.archive(call.path["endpoint_id"])
    return endpoint


async def rotate_webhook_secret(call: Call) -> WebhookEndpointWithSecret:
    """A new secret (shown this once); the old one keeps signing during webhooks.rotation_overlap_s."""
    endpoint: WebhookEndpointWithSecret = await call.engine.webhooks.rotate_secret(call.path["endpoint_id"])
    return endpoint


async def list_webhook_deliveries(call: Call) -> ListOf[Any]:
    """An endpoint's deliveries, newest first (without response bodies)."""
    query: DeliveryQuery = call.query
    page = call.engine.webhooks.list_deliveries(
        call.path["endpoint_id"], status=query.status, limit=query.limit, cursor=query.cursor
    )
    return listing(page)


async def get_webhook_delivery(call: Call) -> WebhookDelivery:
    """One delivery with its last response body (first 4 KB) and error."""
    delivery: WebhookDelivery = call.engine.webhooks.get_delivery(call.path["delivery_id"])
    return delivery


async def retry_webhook_delivery(call: Call) -> WebhookDelivery:
    """A FAILED delivery back to PENDING with a new budget of attempts, sent straight away; otherwise 404."""
    delivery: WebhookDelivery = await call.engine.webhooks.retry(call.path["delivery_id"])
    return delivery


_TAG = "Webhooks"
ENDPOINTS = [
    Endpoint(
        "POST",
        _ENDPOINTS,
        create_webhook_endpoint,
        "Register a webhook endpoint",
        _TAG,
        body=WebhookEndpointCreate,
        response=WebhookEndpointWithSecret,
        status=201,
    ),
    Endpoint(
        "GET",
        _ENDPOINTS,
        list_webhook_endpoints,
        "Webhook endpoints",
        _TAG,
        query=EndpointQuery,
        response=ListOf[WebhookEndpoint],
    ),
    Endpoint("GET", _ONE, get_webhook_endpoint, "Get a webhook endpoint", _TAG, response=WebhookEndpoint),
    Endpoint(
        "PATCH",
        _ONE,
        update_webhook_endpoint,
        "Change a webhook endpoint",
        _TAG,
        body=WebhookEndpointUpdate,
        response=WebhookEndpoint,
    ),
    Endpoint("DELETE", _ONE, delete_webhook_endpoint, "Archive a webhook endpoint", _TAG, response=WebhookEndpoint),
    Endpoint(
        "POST",
        _ONE + "/rotate-secret",
        rotate_webhook_secret,
        "Rotate an endpoint's secret",
        _TAG,
        response=WebhookEndpointWithSecret,
    ),
    Endpoint(
        "GET",
        _ONE + "/deliveries",
        list_webhook_deliveries,
        "An endpoint's deliveries",
        _TAG,
        query=DeliveryQuery,
        response=ListOf[WebhookDelivery],
    ),
    Endpoint("GET", _DELIVERY, get_webhook_delivery, "Get a webhook delivery", _TAG, response=WebhookDelivery),
    Endpoint(
        "POST",
        _DELIVERY + "/retry",
        retry_webhook_delivery,
        "Retry a FAILED webhook delivery",
        _TAG,
        response=WebhookDelivery,
    ),
]
