"""``engine.webhooks``: the endpoints API and the delivery worker (docs/webhooks.md).

Delivery is per endpoint, strictly in outbox order (so also per endpoint and participant): the worker keeps one
task per endpoint that sends the head of the endpoint's ``webhook_queue`` (read from disk one entry at a time:
bounded memory), waits out its backoff when it fails, and moves on when it is DELIVERED or FAILED (after
``attempts_max`` attempts). Every state change of a delivery is its own writer record, so the event path never
waits for a receiver. At least once: an attempt whose result was not committed before a crash is sent again.
"""

from __future__ import annotations

import logging
import random
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import msgspec
import trio

from scrip_actor import cursors
from scrip_actor.config import WebhookSettings
from scrip_actor.errors import LimitExceeded, NotFound, ValidationFailed
from scrip_actor.model import Page
from scrip_actor.store import KEY_BYTES_MAX, Op, Store, Writer, encode
from scrip_actor.webhooks._model import (
    EVENT_TYPES,
    OutboxRecord,
    StoredDelivery,
    StoredEndpoint,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEndpointCreate,
    WebhookEndpointUpdate,
    WebhookEndpointWithSecret,
)
from scrip_actor.webhooks._outbox import Outbox, delivery_id, queue_key
from scrip_actor.webhooks._secrets import SecretBox, new_secret, signature_header
from scrip_actor.webhooks._targets import checked_transport, refusal

__all__ = ["WebhookStatistics", "Webhooks"]

_log = logging.getLogger("scrip_actor.webhooks")
_RESPONSE_BODY_MAX = 4096
_PRUNE_BATCH = 500


class WebhookStatistics(msgspec.Struct, frozen=True, kw_only=True):
    """Counters for metrics: attempts and their outcomes since start, and the outbox now."""

    attempts: int
    delivered: int
    failed: int  # deliveries that ran out of attempts
    retries_scheduled: int
    outbox_depth: int  # deliveries PENDING (queued) on disk
    outbox_oldest_age_s: float  # age of the oldest PENDING delivery (0: none)
    outbox_records: int
    pruned: int


class Webhooks:
    """Endpoints CRUD, deliveries, and the worker; built by the engine with the outbox its Publisher fills."""

    def __init__(
        self, store: Store, writer: Writer, outbox: Outbox, clock: Callable[[], datetime], settings: WebhookSettings
    ) -> None:
        self._store, self._writer, self._outbox, self._clock = store, writer, outbox, clock
        self._settings = settings
        self._box = SecretBox(settings.secret_key, settings.secret_key_file, str(store.path))
        self._endpoints: dict[str, StoredEndpoint] = {}
        self._wakes: dict[str, trio.Event] = {}
        self._locks: dict[str, trio.Lock] = {}
        self._sending: set[str] = set()
        self._nursery: trio.Nursery | None = None
        self._client: httpx.AsyncClient | None = None
        self._counts = {"attempts": 0, "delivered": 0, "failed": 0, "retries": 0, "pruned": 0, "disabled": 0}

    def load(self) -> None:
        """Endpoints and the outbox sequence from the store (called by the engine's recovery, which closes the store
        again if this raises: an unusable webhook key setting is refused here)."""
        self._box.check()
        for _, raw in self._store.scan("webhook_endpoints"):
            stored = msgspec.json.decode(raw, type=StoredEndpoint)
            self._endpoints[stored.endpoint.id] = stored
        self._outbox.load(self._store)
        self._resubscribe()

    def _resubscribe(self) -> None:
        self._outbox.subscribe((stored.endpoint for stored in self._endpoints.values()), EVENT_TYPES)

    # --- endpoints --------------------------------------------------------------------------------------------

    async def _check_target(self, url: str) -> None:
        problem = await refusal(url, self._settings.allow_private_targets)
        if problem is not None:
            raise ValidationFailed.field("url", "invalid", problem)

    @staticmethod
    def _check_types(types: list[str]) -> list[str]:
        unknown = [name for name in types if name != "*" and name not in EVENT_TYPES]
        if unknown:
            raise ValidationFailed.field("enabled_events", "invalid", f"unknown event type {unknown[0]!r}")
        return list(dict.fromkeys(types))

    async def _save(self, stored: StoredEndpoint) -> None:
        """Store an endpoint; the subscriptions change with the record's append, so later records see them."""
        self._endpoints[stored.endpoint.id] = stored
        self._resubscribe()
        await self._writer.wait_durable(
            self._writer.append([("webhook_endpoints", stored.endpoint.id.encode(), encode(stored))])
        )
        self._start_endpoint(stored.endpoint.id)

    async def create(self, request: WebhookEndpointCreate) -> WebhookEndpointWithSecret:
        """A new ACTIVE endpoint with a new secret (shown this once)."""
        types = self._check_types(request.enabled_events)
        live = sum(stored.endpoint.status != "ARCHIVED" for stored in self._endpoints.values())
        if live >= self._settings.endpoints_max:
            raise LimitExceeded(f"at most {self._settings.endpoints_max} webhook endpoints (webhooks.endpoints_max)")
        await self._check_target(request.url)
        now = self._clock()
        endpoint_id = str(uuid.uuid4())
        endpoint = WebhookEndpoint(
            id=endpoint_id,
            url=request.url,
            description=request.description,
            enabled_events=types,
            metadata=request.metadata,
            status="ACTIVE",
            created_at=now,
            updated_at=now,
        )
        secret = new_secret()
        await self._save(StoredEndpoint(endpoint=endpoint, secrets=[(self._box.seal(secret), None)]))
        return WebhookEndpointWithSecret(**msgspec.structs.asdict(endpoint), secret=secret)

    def _stored(self, endpoint_id: str) -> StoredEndpoint:
        stored = self._endpoints.get(endpoint_id)
        if stored is None or stored.endpoint.status == "ARCHIVED":
            raise NotFound(f"webhook endpoint {endpoint_id} not found", {"webhook_endpoint_id": endpoint_id})
        return stored

    def get(self, endpoint_id: str) -> WebhookEndpoint:
        """One endpoint (not archived), without its secret."""
        return self._stored(endpoint_id).endpoint

    def list(self, *, status: str | None = None, limit: int = 20, cursor: str | None = None) -> Page:
        """Endpoints newest first, archived left out."""
        endpoints = [
            stored.endpoint
            for stored in self._endpoints.values()
            if stored.endpoint.status != "ARCHIVED" and (status is None or stored.endpoint.status == status)
        ]
        endpoints.sort(key=lambda endpoint: (endpoint.created_at, endpoint.id), reverse=True)
        if cursor:
            micros, last_id = cursors.decode(cursor, tuple[int, str])
            endpoints = [e for e in endpoints if (_micros(e.created_at), e.id) < (micros, last_id)]
        chunk = endpoints[:limit]
        more = len(endpoints) > limit
        next_cursor = cursors.encode((_micros(chunk[-1].created_at), chunk[-1].id)) if more else None
        return Page(data=chunk, has_more=more, next_cursor=next_cursor)

    async def update(self, endpoint_id: str, request: WebhookEndpointUpdate) -> WebhookEndpoint:
        """Change url, description, enabled_events (replaced), metadata or status.

        Setting a status clears ``disabled_reason`` and the run of failures (re-enabling is the operator's word
        that the receiver is back). The stored endpoint is read after the target check's await, so a change the
        delivery worker made meanwhile (an auto-disable) is not overwritten by an older copy.
        """
        self._stored(endpoint_id)  # 404 before any check
        changes: dict[str, Any] = {}
        if request.enabled_events is not None:
            changes["enabled_events"] = self._check_types(request.enabled_events)
        if request.url is not None:
            await self._check_target(request.url)
            changes["url"] = request.url
        for name in ("description", "metadata", "status"):
            if getattr(request, name) is not None:
                changes[name] = getattr(request, name)
        stored = self._stored(endpoint_id)
        failed_in_a_row = stored.failed_in_a_row
        if request.status is not None:
            changes["disabled_reason"], failed_in_a_row = None, 0
        endpoint = msgspec.structs.replace(stored.endpoint, **changes, updated_at=self._clock())
        await self._save(StoredEndpoint(endpoint=endpoint, secrets=stored.secrets, failed_in_a_row=failed_in_a_row))
        self._wake(endpoint_id)
        return endpoint

    async def archive(self, endpoint_id: str) -> WebhookEndpoint:
        """DELETE: the endpoint is ARCHIVED (kept, so its deliveries still answer); nothing more is sent to it."""
        stored = self._stored(endpoint_id)
        endpoint = msgspec.structs.replace(stored.endpoint, status="ARCHIVED", updated_at=self._clock())
        await self._save(msgspec.structs.replace(stored, endpoint=endpoint))
        self._wake(endpoint_id)
        return endpoint

    async def rotate_secret(self, endpoint_id: str) -> WebhookEndpointWithSecret:
        """A new secret; the old one keeps signing for ``webhooks.rotation_overlap_s`` (0: it stops at once)."""
        stored = self._stored(endpoint_id)
        now = self._clock()
        overlap = self._settings.rotation_overlap_s
        kept = [(token, until) for token, until in stored.secrets[1:] if until is not None and until > now]
        if overlap > 0:
            kept.insert(0, (stored.secrets[0][0], now + timedelta(seconds=overlap)))
        secret = new_secret()
        endpoint = msgspec.structs.replace(stored.endpoint, updated_at=now)
        await self._save(
            msgspec.structs.replace(stored, endpoint=endpoint, secrets=[(self._box.seal(secret), None), *kept])
        )
        return WebhookEndpointWithSecret(**msgspec.structs.asdict(endpoint), secret=secret)

    def _secrets_in_force(self, stored: StoredEndpoint) -> list[str]:
        now = self._clock()
        return [self._box.open(token) for token, until in stored.secrets if until is None or until > now]

    # --- deliveries -------------------------------------------------------------------------------------------

    def _get(self, db: str, key: bytes) -> bytes | None:
        """One value from a fresh read transaction. Not the store's cached reader: that one is renewed after the
        writer's commit returns to the trio thread, and this worker runs while a commit is in flight, so its scans
        (fresh transactions) could see a queue entry the cached reader does not yet have the delivery of."""
        if not 0 < len(key) <= KEY_BYTES_MAX:
            return None
        store = self._store
        with store.env.begin(db=store.dbs[db]) as txn:
            value = txn.get(key)
            return None if value is None else bytes(value)

    def _delivery(self, delivery_id: str) -> StoredDelivery:
        raw = self._get("webhook_deliveries", delivery_id.encode())
        if raw is None:
            raise NotFound(f"webhook delivery {delivery_id} not found", {"webhook_delivery_id": delivery_id})
        return msgspec.json.decode(raw, type=StoredDelivery)

    def _shown(self, stored: StoredDelivery) -> WebhookDelivery:
        delivery = stored.delivery
        if delivery.id in self._sending:
            return msgspec.structs.replace(delivery, status="SENDING")
        return delivery

    def get_delivery(self, delivery_id: str) -> WebhookDelivery:
        """One delivery, with its last response body and error."""
        return self._shown(self._delivery(delivery_id))

    def list_deliveries(
        self, endpoint_id: str, *, status: str | None = None, limit: int = 20, cursor: str | None = None
    ) -> Page:
        """An endpoint's deliveries, newest first (a status filter looks at most at 10,000 per call)."""
        if endpoint_id not in self._endpoints:
            self._stored(endpoint_id)  # the 404
        prefix = endpoint_id.encode() + b"\0"
        start = None
        if cursor:
            (sequence,) = cursors.decode(cursor, tuple[int])
            start = queue_key(endpoint_id, sequence)
        data: list[WebhookDelivery] = []
        last_key = b""
        more = False
        for seen, (key, value) in enumerate(self._store.scan("webhook_by_endpoint", prefix, start=start, reverse=True)):
            if len(data) == limit or seen >= 10_000:
                more = True
                break
            last_key = key
            raw = self._get("webhook_deliveries", value)
            if raw is None:
                continue  # pruned between the two reads
            delivery = self._shown(msgspec.json.decode(raw, type=StoredDelivery))
            if status is None or delivery.status == status:
                data.append(msgspec.structs.replace(delivery, last_response_body=None))
        next_cursor = cursors.encode((int.from_bytes(last_key[-8:], "big"),)) if more and last_key else None
        return Page(data=data, has_more=more and last_key != b"", next_cursor=next_cursor)

    async def retry(self, delivery_id: str) -> WebhookDelivery:
        """A FAILED delivery back to PENDING with a new budget, sent straight away; any other status is a 404."""
        stored = self._delivery(delivery_id)
        if stored.delivery.status != "FAILED":
            raise NotFound(
                f"webhook delivery {delivery_id} is {stored.delivery.status}: only FAILED deliveries can be retried",
                {"status": stored.delivery.status},
            )
        self._stored(stored.delivery.webhook_endpoint_id)  # 404 for an archived endpoint: nothing would send it
        now = self._clock()
        delivery = msgspec.structs.replace(
            stored.delivery, status="PENDING", attempt_count=0, next_attempt_at=now, updated_at=now
        )
        endpoint_id = delivery.webhook_endpoint_id
        ops: list[Op] = [
            (
                "webhook_deliveries",
                delivery.id.encode(),
                encode(StoredDelivery(delivery=delivery, outbox=stored.outbox)),
            ),
            ("webhook_queue", queue_key(endpoint_id, stored.outbox), delivery.id.encode()),
        ]
        await self._writer.wait_durable(self._writer.append(ops))
        self._wake(endpoint_id)
        return delivery

    # --- the worker -------------------------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The delivery worker: a task per endpoint, and the outbox's pruning."""
        settings = self._settings
        timeout = httpx.Timeout(settings.read_timeout_s, connect=settings.connect_timeout_s)
        # trust_env=False: no proxy from the environment, so the connection's address check (checked_transport)
        # is made on the receiver itself, not on a proxy that would resolve the name again.
        transport = checked_transport(settings.allow_private_targets)
        client = httpx.AsyncClient(timeout=timeout, follow_redirects=False, transport=transport, trust_env=False)
        async with client, trio.open_nursery() as nursery:
            self._client, self._nursery = client, nursery
            for endpoint_id in list(self._endpoints):
                self._start_endpoint(endpoint_id)
            task_status.started()
            while True:
                self.prune()
                await trio.sleep(max(settings.poll_interval_s, 60.0))

    def _start_endpoint(self, endpoint_id: str) -> None:
        if self._nursery is not None and endpoint_id not in self._wakes:
            self._wakes[endpoint_id] = trio.Event()
            self._nursery.start_soon(self._endpoint_loop, endpoint_id)

    def _wake(self, endpoint_id: str) -> None:
        wake = self._wakes.get(endpoint_id)
        if wake is not None:
            wake.set()

    def after_commit(self) -> None:
        """After a group commit (synchronous): wake every endpoint task if outbox records were in it."""
        if self._outbox.appended:
            self._outbox.appended = False
            for wake in self._wakes.values():
                wake.set()

    async def _endpoint_loop(self, endpoint_id: str) -> None:
        while True:
            stored = self._endpoints.get(endpoint_id)
            if stored is None or stored.endpoint.status == "ARCHIVED":
                await self._abandon(endpoint_id)
                self._wakes.pop(endpoint_id, None)
                return
            self._wakes[endpoint_id] = wake = trio.Event()
            if stored.endpoint.status == "ACTIVE":
                await self._drain(endpoint_id)
            with trio.move_on_after(self._settings.poll_interval_s):
                await wake.wait()

    async def _abandon(self, endpoint_id: str) -> None:
        """An archived endpoint's queue: every PENDING delivery FAILED ("endpoint archived"), 500 per record, so
        its outbox records can be pruned (retrying one is a 404: its endpoint is gone)."""
        prefix = endpoint_id.encode() + b"\0"
        while True:
            ops: list[Op] = []
            now = self._clock()
            for key, value in self._store.scan("webhook_queue", prefix):
                stored = self._delivery(value.decode())
                failed = msgspec.structs.replace(
                    stored.delivery,
                    status="FAILED",
                    next_attempt_at=None,
                    last_error="endpoint archived",
                    updated_at=now,
                )
                ops.append(("webhook_deliveries", value, encode(StoredDelivery(delivery=failed, outbox=stored.outbox))))
                ops.append(("webhook_queue", key, None))
                if len(ops) >= 2 * _PRUNE_BATCH:
                    break
            if not ops:
                return
            await self._writer.wait_durable(self._writer.append(ops))

    async def deliver_due(self) -> int:
        """Send everything due now to every ACTIVE endpoint, concurrently; returns the attempts made.

        The worker does this on its own; tests with a manual clock call it after moving the clock.
        """
        attempts = 0

        async def drain(endpoint_id: str) -> None:
            nonlocal attempts
            attempts += await self._drain(endpoint_id)

        async with trio.open_nursery() as nursery:
            for endpoint_id, stored in list(self._endpoints.items()):
                if stored.endpoint.status == "ACTIVE":
                    nursery.start_soon(drain, endpoint_id)
        return attempts

    async def _drain(self, endpoint_id: str) -> int:
        """Send the endpoint's queue head while it is due; returns the attempts made."""
        lock = self._locks.setdefault(endpoint_id, trio.Lock())
        attempts = 0
        async with lock:
            while True:
                stored_endpoint = self._endpoints.get(endpoint_id)
                if stored_endpoint is None or stored_endpoint.endpoint.status != "ACTIVE":
                    return attempts
                head = next(self._store.scan("webhook_queue", endpoint_id.encode() + b"\0"), None)
                if head is None:
                    return attempts
                stored = self._delivery(head[1].decode())
                due = stored.delivery.next_attempt_at
                if due is not None and due > self._clock():
                    return attempts
                await self._attempt(stored_endpoint, stored)
                attempts += 1

    async def _attempt(self, endpoint: StoredEndpoint, stored: StoredDelivery) -> None:
        """One attempt, and its result written as its own record (durable before the next attempt)."""
        assert self._client is not None, "the worker is not running"
        delivery = stored.delivery
        record = self._get("webhook_events", stored.outbox.to_bytes(8, "big"))
        assert record is not None, f"delivery {delivery.id} has no outbox record"
        body = bytes(msgspec.json.decode(record, type=OutboxRecord).envelope)
        status_code: int | None = None
        response_body: str | None = None
        error: str | None = None
        problem = await refusal(endpoint.endpoint.url, self._settings.allow_private_targets)
        self._counts["attempts"] += 1
        if problem is not None:
            error = f"target refused: {problem}"
        else:
            try:
                headers = self._headers(endpoint, delivery.webhook_event_id, body.decode())
            except ValueError as failure:  # the key changed: the stored secrets no longer decrypt
                headers, error = {}, str(failure)
        if error is None:
            self._sending.add(delivery.id)
            try:
                response = await self._client.post(endpoint.endpoint.url, content=body, headers=headers)
                status_code = response.status_code
                response_body = response.text[:_RESPONSE_BODY_MAX]
            except (httpx.HTTPError, httpx.InvalidURL) as failure:
                error = f"{type(failure).__name__}: {failure}"[:_RESPONSE_BODY_MAX]
            except Exception as failure:  # a bug or an input nobody foresaw fails the attempt, never the engine
                _log.exception("webhook delivery %s: unexpected error while sending", delivery.id)
                error = f"internal error while sending ({type(failure).__name__})"
            finally:
                self._sending.discard(delivery.id)
            if status_code is not None and not 200 <= status_code < 300:
                error = f"receiver answered {status_code}"
        await self._record(stored, status_code, response_body, error)

    def _headers(self, endpoint: StoredEndpoint, message_id: str, text: str) -> dict[str, str]:
        """The Standard Webhooks headers, signed with every secret in force (``text``: the body)."""
        signed_at = datetime.now(UTC)  # real time: receivers check it against their clocks
        return {
            "content-type": "application/json",
            "user-agent": "scrip-actor-webhooks",
            "webhook-id": message_id,
            "webhook-timestamp": str(int(signed_at.timestamp())),
            "webhook-signature": signature_header(self._secrets_in_force(endpoint), message_id, signed_at, text),
        }

    async def _record(
        self, stored: StoredDelivery, status_code: int | None, body: str | None, error: str | None
    ) -> None:
        now = self._clock()
        delivery = stored.delivery
        attempts = delivery.attempt_count + 1
        changes: dict[str, Any] = {
            "attempt_count": attempts,
            "last_attempt_at": now,
            "last_response_status": status_code,
            "last_response_body": body,
            "last_error": error,
            "updated_at": now,
        }
        if error is None:
            changes.update(status="DELIVERED", delivered_at=now, next_attempt_at=None)
            self._counts["delivered"] += 1
        elif attempts >= delivery.max_attempts:
            changes.update(status="FAILED", next_attempt_at=None)
            self._counts["failed"] += 1
        else:
            changes.update(status="PENDING", next_attempt_at=now + timedelta(seconds=self._backoff_s(attempts)))
            self._counts["retries"] += 1
        updated = msgspec.structs.replace(delivery, **changes)
        ops: list[Op] = [
            ("webhook_deliveries", delivery.id.encode(), encode(StoredDelivery(delivery=updated, outbox=stored.outbox)))
        ]
        if updated.status != "PENDING":
            ops.append(("webhook_queue", queue_key(delivery.webhook_endpoint_id, stored.outbox), None))
            ops.extend(self._count_run(delivery.webhook_endpoint_id, updated.status == "FAILED", error))
        await self._writer.wait_durable(self._writer.append(ops))

    def _count_run(self, endpoint_id: str, failed: bool, error: str | None) -> list[Op]:
        """Count a finished delivery in its endpoint's run of failures (:func:`_after_delivery`); the endpoint's new
        record to write with the delivery's (none if unchanged). Synchronous from the read to the swap."""
        stored = self._endpoints.get(endpoint_id)
        updated = _after_delivery(stored, failed, error, self._settings.disable_after_failed_deliveries, self._clock)
        if stored is None or updated is None:
            return []
        self._endpoints[endpoint_id] = updated
        if updated.endpoint.status != stored.endpoint.status:
            self._counts["disabled"] += 1
            _log.warning("webhook endpoint %s %s", endpoint_id, updated.endpoint.disabled_reason)
            self._resubscribe()  # nothing new is queued for it from the next record on
        return [("webhook_endpoints", endpoint_id.encode(), encode(updated))]

    def _backoff_s(self, attempts: int) -> float:
        """Exponential, with jitter: between half and all of ``base * 2**(attempts-1)``, at most ``retry_max_s``."""
        settings = self._settings
        ceiling = min(settings.retry_max_s, settings.retry_base_s * 2 ** min(attempts - 1, 40))
        return ceiling * random.uniform(0.5, 1.0)

    # --- retention and statistics -----------------------------------------------------------------------------

    def prune(self) -> int:
        """Remove outbox records older than ``webhooks.retention_s`` whose deliveries are all DELIVERED or FAILED
        (with those deliveries); looks at most at 500 records a call. Returns how many were removed."""
        cutoff = self._clock() - timedelta(seconds=self._settings.retention_s)
        ops: list[Op] = []
        removed = 0
        for seen, (key, raw) in enumerate(self._store.scan("webhook_events")):
            record = msgspec.json.decode(raw, type=OutboxRecord)
            if seen >= _PRUNE_BATCH or record.created_at >= cutoff:
                break
            sequence = int.from_bytes(key, "big")
            if any(self._get("webhook_queue", queue_key(e, sequence)) is not None for e in record.endpoints):
                continue
            webhook_event_id = msgspec.json.decode(bytes(record.envelope))["id"]
            ops.append(("webhook_events", key, None))
            for endpoint_id in record.endpoints:
                ops.append(("webhook_deliveries", delivery_id(webhook_event_id, endpoint_id).encode(), None))
                ops.append(("webhook_by_endpoint", queue_key(endpoint_id, sequence), None))
            removed += 1
        if ops:
            self._writer.append(ops)
            self._counts["pruned"] += removed
        return removed

    def statistics(self) -> WebhookStatistics:
        """Counters and the outbox's depth and age (a scan of each endpoint's queue head: one read per endpoint)."""
        oldest: datetime | None = None
        for endpoint_id in self._endpoints:
            head = next(self._store.scan("webhook_queue", endpoint_id.encode() + b"\0"), None)
            if head is not None:
                raw = self._get("webhook_deliveries", head[1])
                if raw is not None:
                    created = msgspec.json.decode(raw, type=StoredDelivery).delivery.created_at
                    oldest = created if oldest is None or created < oldest else oldest
        counts = self._counts
        return WebhookStatistics(
            attempts=counts["attempts"],
            delivered=counts["delivered"],
            failed=counts["failed"],
            retries_scheduled=counts["retries"],
            outbox_depth=self._store.count("webhook_queue"),
            outbox_oldest_age_s=0.0 if oldest is None else max(0.0, (self._clock() - oldest).total_seconds()),
            outbox_records=self._store.count("webhook_events"),
            pruned=counts["pruned"],
        )


def _after_delivery(
    stored: StoredEndpoint | None, failed: bool, error: str | None, limit: int, clock: Callable[[], datetime]
) -> StoredEndpoint | None:
    """The endpoint after one of its deliveries ended FAILED (``failed``) or DELIVERED; None if unchanged.

    A failure lengthens the run, a success ends it; when the run reaches ``limit``
    (``webhooks.disable_after_failed_deliveries``, 0: never) an ACTIVE endpoint becomes DISABLED with a reason.
    """
    if stored is None or (not failed and stored.failed_in_a_row == 0):
        return None
    run = stored.failed_in_a_row + 1 if failed else 0
    endpoint = stored.endpoint
    if failed and limit and run >= limit and endpoint.status == "ACTIVE":
        reason = f"disabled after {run} deliveries in a row failed; the last: {error}"
        endpoint = msgspec.structs.replace(
            endpoint, status="DISABLED", disabled_reason=reason[:_RESPONSE_BODY_MAX], updated_at=clock()
        )
    return StoredEndpoint(endpoint=endpoint, secrets=stored.secrets, failed_in_a_row=run)


def _micros(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000)
