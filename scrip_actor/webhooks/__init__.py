"""Outgoing webhooks (issue 14, docs/webhooks.md): endpoints, a transactional outbox, a delivery worker.

* :mod:`._model`: the endpoint and delivery resources, and their stored records.
* :mod:`._outbox`: turns committed changes into §8.1 events, as ops of the same writer record (the Publisher's).
* :mod:`._targets`: URL and SSRF policy; :mod:`._secrets`: ``whsec_`` secrets, encrypted at rest, and signing.
* :mod:`._service`: the endpoints API and the delivery worker (``engine.webhooks``).
"""

from scrip_actor.webhooks._model import (
    EVENT_TYPES,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEndpointCreate,
    WebhookEndpointUpdate,
    WebhookEndpointWithSecret,
)
from scrip_actor.webhooks._outbox import Outbox
from scrip_actor.webhooks._service import Webhooks, WebhookStatistics

__all__ = [
    "EVENT_TYPES",
    "Outbox",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WebhookEndpointCreate",
    "WebhookEndpointUpdate",
    "WebhookEndpointWithSecret",
    "WebhookStatistics",
    "Webhooks",
]
