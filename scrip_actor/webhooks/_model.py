"""The webhook resources as the API shows them (hosted §2.20) and as the store keeps them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta, Struct

__all__ = [
    "API_VERSION",
    "EVENT_TYPES",
    "DeliveryStatus",
    "EndpointStatus",
    "OutboxRecord",
    "StoredDelivery",
    "StoredEndpoint",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WebhookEndpointCreate",
    "WebhookEndpointUpdate",
    "WebhookEndpointWithSecret",
]

API_VERSION = "2026-03-01"
# §8.1: every type the engine produces.
EVENT_TYPES = frozenset(
    {
        "balance.credited",
        "balance.debited",
        "balance.expired",
        "balance.held",
        "balance.released",
        "redemption.completed",
        "redemption.reversed",
        "transfer.completed",
        "event.completed",
        "event.failed",
        "participant.created",
        "participant.tier_changed",
        "program.funded",
        "program.burned",
    }
)
EndpointStatus = Literal["ACTIVE", "DISABLED", "ARCHIVED"]
DeliveryStatus = Literal["PENDING", "SENDING", "DELIVERED", "FAILED"]
Url = Annotated[str, Meta(min_length=1, max_length=2048)]
EventTypeName = Annotated[str, Meta(min_length=1, max_length=64)]
EnabledEvents = Annotated[list[EventTypeName], Meta(min_length=1, max_length=64)]
Description = Annotated[str, Meta(max_length=1024)]
_request = {"frozen": True, "forbid_unknown_fields": True, "kw_only": True}


class WebhookEndpointCreate(Struct, **_request):
    """A new endpoint: an https URL on a public address, the event types it wants (``*``: all)."""

    url: Url
    enabled_events: EnabledEvents
    description: Description | None = None
    metadata: dict[str, Any] | None = None


class WebhookEndpointUpdate(Struct, **_request):
    """Change an endpoint; ``enabled_events`` replaces the list; ``status`` ACTIVE or DISABLED."""

    url: Url | None = None
    enabled_events: EnabledEvents | None = None
    description: Description | None = None
    metadata: dict[str, Any] | None = None
    status: Literal["ACTIVE", "DISABLED"] | None = None


class WebhookEndpoint(Struct, kw_only=True):
    """An endpoint, without its secret (shown only by create and rotate-secret)."""

    id: str
    url: str
    description: str | None = None
    enabled_events: list[str]
    metadata: dict[str, Any] | None = None
    status: EndpointStatus
    # Why the engine DISABLED it (webhooks.disable_after_failed_deliveries); None otherwise. Our addition.
    disabled_reason: str | None = None
    created_at: datetime
    updated_at: datetime


class WebhookEndpointWithSecret(WebhookEndpoint, kw_only=True):
    """The answer of create and rotate-secret: the one time the secret is shown."""

    secret: str


class StoredEndpoint(Struct, kw_only=True):
    """An endpoint as stored: ``secrets`` are Fernet tokens, the current one first, then old ones with the time
    their overlap window ends (docs/webhooks.md "Secrets")."""

    endpoint: WebhookEndpoint
    secrets: list[tuple[str, datetime | None]]
    failed_in_a_row: int = 0  # deliveries ended FAILED since the last DELIVERED one (auto-disable, docs/webhooks.md)


class WebhookDelivery(Struct, kw_only=True):
    """One event's delivery to one endpoint (hosted §2.20). ``last_response_body`` only on GET by id."""

    id: str
    webhook_endpoint_id: str
    webhook_event_id: str
    event_type: str
    status: DeliveryStatus
    attempt_count: int = 0
    max_attempts: int
    next_attempt_at: datetime | None = None
    last_attempt_at: datetime | None = None
    last_response_status: int | None = None
    last_response_body: str | None = None
    last_error: str | None = None
    delivered_at: datetime | None = None
    created_at: datetime
    updated_at: datetime


class StoredDelivery(Struct, kw_only=True):
    """A delivery as stored: the public fields and its outbox record's sequence."""

    delivery: WebhookDelivery
    outbox: int


class OutboxRecord(Struct, array_like=True):
    """One webhook event in the outbox: the exact body every endpoint is sent, and the endpoints it went to."""

    envelope: msgspec.Raw
    endpoints: list[str]
    created_at: datetime
