"""``scrip verify``'s checks of the webhook databases: every record decodes, and the queue and the deliveries agree."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Protocol

import msgspec

from scrip_actor.webhooks._model import EVENT_TYPES, OutboxRecord, StoredDelivery, StoredEndpoint

__all__ = ["check_webhooks"]


class _Reads(Protocol):
    def get_raw(self, db: str, key: bytes) -> bytes | None: ...
    def scan(self, db: str, prefix: bytes = b"") -> Iterator[tuple[bytes, bytes]]: ...


def check_webhooks(store: _Reads, problem: Callable[[str], None]) -> None:
    """Report a record that does not decode, an envelope of an unknown type, a queue entry without its PENDING
    delivery, or a delivery whose endpoint or outbox record is missing (pruning removes them together)."""
    endpoints: set[str] = set()
    for key, raw in store.scan("webhook_endpoints"):
        stored = _decode(raw, StoredEndpoint, f"webhook endpoint {key!r}", problem)
        if stored is not None:
            endpoints.add(stored.endpoint.id)
    for key, raw in store.scan("webhook_events"):
        record = _decode(raw, OutboxRecord, f"outbox record #{int.from_bytes(key, 'big')}", problem)
        if record is None:
            continue
        envelope = _decode(
            bytes(record.envelope), dict[str, Any], f"outbox record #{int.from_bytes(key, 'big')}", problem
        )
        if envelope is not None and (envelope.get("type") not in EVENT_TYPES or not envelope.get("id")):
            problem(f"outbox record #{int.from_bytes(key, 'big')}: envelope without an id or of an unknown type")
    for key, raw in store.scan("webhook_deliveries"):
        stored_delivery = _decode(raw, StoredDelivery, f"webhook delivery {key.decode(errors='replace')}", problem)
        if stored_delivery is None:
            continue
        delivery = stored_delivery.delivery
        if delivery.webhook_endpoint_id not in endpoints:
            problem(f"webhook delivery {delivery.id}: its endpoint {delivery.webhook_endpoint_id} is not stored")
        if store.get_raw("webhook_events", stored_delivery.outbox.to_bytes(8, "big")) is None:
            problem(f"webhook delivery {delivery.id}: its outbox record #{stored_delivery.outbox} is missing")
    for key, value in store.scan("webhook_queue"):
        raw = store.get_raw("webhook_deliveries", value)
        queued = None if raw is None else _decode(raw, StoredDelivery, "queued delivery", problem)
        if queued is None or queued.delivery.status != "PENDING":
            problem(f"webhook queue entry {key!r}: its delivery {value.decode(errors='replace')} is not PENDING")


def _decode(raw: bytes, type_: Any, where: str, problem: Callable[[str], None]) -> Any:
    try:
        return msgspec.json.decode(raw, type=type_)
    except msgspec.DecodeError as error:
        problem(f"{where}: does not decode ({error})")
        return None
