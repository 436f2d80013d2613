"""The front role: a stateless HTTP process that puts each accepted event in the events topic, at its partition.

``POST /v1/events`` is judged exactly as the embedded server judges it, by the same code: the view built by
``scrip_actor.http.app`` for an :class:`~scrip_actor.http.routing.Endpoint` (API key, JSON media type, body byte
limit and read timeout, :class:`~scrip_actor.model.EventSubmit` decoding, ``{code, message, details}`` errors,
request ids), with the embedded error handlers and hooks. Only the handler differs: instead of the engine's
``submit``, it produces the decoded event, re-encoded as JSON (what ``_engine_role`` decodes), keyed by the
participant's ``external_id`` to partition :func:`~scrip_actor.partitioned._routing.partition_for`, and answers
202 only once the broker's delivery report says the record is stored (idempotent producer, ``acks=all``). A
broker error or a delivery timeout is a 503 ``broker_unavailable``: nothing was acknowledged, and sending the
same event again is safe (the partition's engine dedupes by ``idempotency_key``). ``POST /v1/events/batch`` is the
same per item: each judged on its own, all produced in input order, each ``accepted`` after its own report.

The delivery report runs on a poll thread of ours (or inside ``produce`` on the trio thread); it hands the answer
to the waiting request with ``TrioToken.run_sync_soon``, the one thread-safe way into a trio run.

What the front cannot judge, because it holds no state: whether the program exists, event_data's engine-side
limits, an idempotency key reused with another payload. The partition's engine records those as the event's
failure (``GET /v1/events/{id}`` there).

``POST /v1/transfers`` goes the same way to the source's partition as a ``scrip-kind: transfer`` record (source and
recipients named by external_id); that partition's engine moves the value to recipients elsewhere through its
outbox (scrip_actor/engine/_cross_partition.py); a participant's balance operations go to its own partition and
are answered as the embedded route answers (``_front_operations.py``). Given the partitions' readers
(``readers``), every GET is routed
to the partition holding its data or fanned out to all and merged (``_front_reads.py``). Every other route
answers 501 ``not_routed`` (docs/partitioned.md).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Literal

import msgspec
import trio
from quart import Response, request
from quart_trio import QuartTrio

from scrip_actor.amounts import parse_decimal
from scrip_actor.config import Config
from scrip_actor.errors import ScripError, ValidationFailed
from scrip_actor.http.app import (
    HttpLimits,
    _authenticate,
    _error,
    _install_error_handlers,
    _install_hooks,
    _view,
)
from scrip_actor.http.auth import ApiKeys
from scrip_actor.http.errors import BrokerUnavailable, NotRouted
from scrip_actor.http.metrics import HttpMetrics
from scrip_actor.http.routes_events import _decode_item
from scrip_actor.http.routing import Call, Endpoint
from scrip_actor.http.schemas import EventBatch, ItemError, WalletOperation
from scrip_actor.http.server import serve_app
from scrip_actor.model import EventSubmit, TransferCreate
from scrip_actor.partitioned._front_operations import operation_endpoints
from scrip_actor.partitioned._front_reads import PartitionReaders, serve_read
from scrip_actor.partitioned._kafka import RecordProducer
from scrip_actor.partitioned._routing import KIND_FUND, KIND_TRANSFER, partition_for
from scrip_actor.partitioned._state_writes import state_write_endpoints
from scrip_actor.partitioned._wallet_messages import WalletFund, wallet_routing_key
from scrip_actor.values import external_id as canonical_external_id

__all__ = [
    "Delivery",
    "EventLog",
    "FrontAccepted",
    "FrontBatchResult",
    "LogPosition",
    "TransferAccepted",
    "create_front_app",
    "open_event_log",
    "serve_front",
]

_encoder = msgspec.json.Encoder()
_POLL_S = 0.05
_EXTERNAL_ID_MAX = 255


class LogPosition(msgspec.Struct, kw_only=True, frozen=True):
    """Where the broker stored the event: the record at ``offset`` of ``partition`` of ``topic``."""

    topic: str
    partition: int
    offset: int


class FrontAccepted(msgspec.Struct, kw_only=True):
    """The front's 202: the embedded 202's fields the front knows, and where the event is in the log.

    ``status`` is ``ACCEPTED``: stored in the events topic, not yet admitted by its partition's engine (which
    assigns the event's ``id`` and ``participant_id``; the embedded ``PENDING`` means admitted). ``event_timestamp``
    is the one sent, or None (the engine then stamps the time it admits the record). ``log`` is an extension.
    """

    program_id: str
    external_id: str
    idempotency_key: str
    event_timestamp: datetime | None
    status: Literal["ACCEPTED"] = "ACCEPTED"
    log: LogPosition


class Delivery:
    """One record handed to the producer: :meth:`stored` waits for the broker's answer about it."""

    def __init__(self, topic: str, partition: int) -> None:
        self._topic, self._partition = topic, partition
        self._answered = trio.Event()
        self._answer: tuple[str | None, int, int] = (None, partition, -1)

    def settle(self, error: str | None, stored_partition: int, offset: int) -> None:  # on the trio thread
        self._answer = (error, stored_partition, offset)
        self._answered.set()

    async def stored(self) -> LogPosition:
        """Where the record was stored; raises BrokerUnavailable if the broker did not store it."""
        await self._answered.wait()
        error, stored_partition, offset = self._answer
        if error is not None:
            raise BrokerUnavailable(
                f"the events topic did not store the event: {error}",
                {"topic": self._topic, "partition": self._partition},
            )
        return LogPosition(topic=self._topic, partition=stored_partition, offset=offset)


class EventLog:
    """The events topic as the front writes it: :meth:`append` produces one record and waits for its answer;
    :meth:`send` produces without waiting (a batch sends all its records in order, then waits for each)."""

    def __init__(self, producer: RecordProducer, topic: str, partitions: int, token: trio.lowlevel.TrioToken) -> None:
        self._producer, self.topic, self.partitions, self._token = producer, topic, partitions, token

    def send(self, routing_key: str, value: bytes, kind: str | None = None, partition: int | None = None) -> Delivery:
        """Produce ``value`` keyed by ``routing_key`` to its partition now (records sent in call order are stored in
        that order: idempotent producer); the broker's answer arrives on the returned :class:`Delivery`.

        ``kind`` is the record's ``scrip-kind`` header (None: an event); ``partition``, when the record's partition
        is not its key's (a balance operation goes where its participant id says)."""
        if partition is None:
            partition = partition_for(routing_key, self.partitions)
        assert 0 <= partition < self.partitions, partition
        delivery = Delivery(self.topic, partition)

        def on_acked(error: str | None, stored_partition: int, offset: int) -> None:  # any thread
            with contextlib.suppress(trio.RunFinishedError):  # the front stopped; nobody is waiting any more
                self._token.run_sync_soon(delivery.settle, error, stored_partition, offset)

        self._producer.produce(self.topic, routing_key.encode(), value, on_acked, partition=partition, kind=kind)
        return delivery

    async def append(
        self, routing_key: str, value: bytes, kind: str | None = None, partition: int | None = None
    ) -> LogPosition:
        """Store ``value`` keyed by ``routing_key`` at its partition (or ``partition``); raises BrokerUnavailable if
        it was not stored."""
        return await self.send(routing_key, value, kind, partition).stored()


def _poll_until(producer: RecordProducer, stop: threading.Event) -> None:
    while not stop.is_set():
        producer.poll(_POLL_S)


async def _check_partitions(producer: RecordProducer, topic: str, partitions: int, timeout_s: float) -> None:
    """Refuse to start with a partition count other than the topic's: the count is part of the routing rule, so a
    front with another one would put a participant's events on a partition its engine never reads."""
    found = await trio.to_thread.run_sync(producer.partition_count, topic, timeout_s)
    if found is None:
        raise ValueError(f"the events topic {topic!r} does not exist (create it with {partitions} partitions)")
    if found != partitions:
        raise ValueError(f"the events topic {topic!r} has {found} partitions, not --partitions {partitions}")


@asynccontextmanager
async def open_event_log(
    bootstrap: str, topic: str, partitions: int, *, delivery_timeout_s: float = 10.0
) -> AsyncIterator[EventLog]:
    """An :class:`EventLog` with its delivery-report thread; on exit, waits (``delivery_timeout_s`` at most) for
    records still in flight, so none is left unanswered by the broker.

    Raises ValueError if ``topic`` does not exist or has another partition count, ConnectionError if the broker
    does not answer within ``delivery_timeout_s``.
    """
    producer = RecordProducer(bootstrap, delivery_timeout_s=delivery_timeout_s)
    await _check_partitions(producer, topic, partitions, delivery_timeout_s)
    stop = threading.Event()
    poller = threading.Thread(target=_poll_until, args=(producer, stop), name="scrip-front-deliveries", daemon=True)
    poller.start()
    try:
        yield EventLog(producer, topic, partitions, trio.lowlevel.current_trio_token())
    finally:
        stop.set()
        await trio.to_thread.run_sync(poller.join)
        await trio.to_thread.run_sync(producer.flush, delivery_timeout_s)


def _routing_key(event: EventSubmit) -> str:
    """The key ``event`` is routed by: its external id in the engine's own spelling (NFC), so two spellings of one
    participant land on one partition. A participant id is assigned by one partition's engine, so the front
    cannot know where it lives: an event without an external id is a ValidationFailed."""
    if event.external_id is None or event.participant_id is not None:
        raise ValidationFailed.field(
            "external_id", "required", "the partitioned front routes by external_id: give it, not participant_id"
        )
    return canonical_external_id(event.external_id, _EXTERNAL_ID_MAX)


def _accepted(event: EventSubmit, position: LogPosition) -> FrontAccepted:
    assert event.external_id is not None
    return FrontAccepted(
        program_id=event.program_id,
        external_id=event.external_id,
        idempotency_key=event.idempotency_key,
        event_timestamp=event.event_timestamp,
        log=position,
    )


def _submit_endpoint(log: EventLog) -> Endpoint:
    async def submit_event(call: Call) -> FrontAccepted:
        event: EventSubmit = call.body
        return _accepted(event, await log.append(_routing_key(event), _encoder.encode(event)))

    return Endpoint(
        "POST",
        "/v1/events",
        submit_event,
        "Submit an event to the events topic (202 once the broker stored it)",
        "Events",
        body=EventSubmit,
        response=FrontAccepted,
        status=202,
    )


class FrontBatchItem(msgspec.Struct, kw_only=True):
    """One batch item's outcome at its input ``index``: the front's 202 shape when stored, else its error."""

    index: int
    status: Literal["accepted", "error"]
    error: ItemError | None = None
    event: FrontAccepted | None = None


class FrontBatchResult(msgspec.Struct, kw_only=True):
    """``POST /v1/events/batch`` on the front: the embedded batch answer's shape, items in input order."""

    total: int
    success_count: int
    error_count: int
    results: list[FrontBatchItem]


def _judged(raw: msgspec.Raw) -> tuple[EventSubmit, str] | ScripError:
    """One batch item decoded and routed (the event and its routing key), or why it is refused."""
    item = _decode_item(raw)
    if isinstance(item, ScripError):
        return item
    try:
        return item, _routing_key(item)
    except ValidationFailed as error:
        return error


async def _stored_or_refused(delivery: Delivery) -> LogPosition | ScripError:
    try:
        return await delivery.stored()
    except BrokerUnavailable as error:
        return error


def _batch_endpoint(log: EventLog, events_max: int) -> Endpoint:
    async def submit_event_batch(call: Call) -> FrontBatchResult:
        """Judge each item as ``POST /v1/events`` would; produce the valid ones in input order (one participant's
        events keep their order), then wait for each one's delivery report: an item is ``accepted`` only once
        the broker stored it, and a broker failure is that item's ``broker_unavailable``."""
        body: EventBatch = call.body
        if not 1 <= len(body.events) <= events_max:
            raise ValidationFailed.field(
                "events", "invalid", f"a batch holds 1-{events_max} events, got {len(body.events)}"
            )
        judged = [_judged(raw) for raw in body.events]
        # Every record is handed to the producer before any answer is awaited, in input order.
        sent = [
            None if isinstance(item, ScripError) else log.send(item[1], _encoder.encode(item[0])) for item in judged
        ]
        results: list[FrontBatchItem] = []
        for index, (item, delivery) in enumerate(zip(judged, sent, strict=True)):
            outcome = item if isinstance(item, ScripError) or delivery is None else await _stored_or_refused(delivery)
            if isinstance(outcome, LogPosition) and not isinstance(item, ScripError):
                results.append(FrontBatchItem(index=index, status="accepted", event=_accepted(item[0], outcome)))
            else:
                assert isinstance(outcome, ScripError)
                failure = ItemError(code=outcome.code, message=outcome.message, details=outcome.details)
                results.append(FrontBatchItem(index=index, status="error", error=failure))
        success = sum(1 for result in results if result.status == "accepted")
        return FrontBatchResult(
            total=len(results), success_count=success, error_count=len(results) - success, results=results
        )

    return Endpoint(
        "POST",
        "/v1/events/batch",
        submit_event_batch,
        f"Submit 1-{events_max} events to the events topic; each item 202'd once the broker stored it",
        "Events",
        body=EventBatch,
        response=FrontBatchResult,
        status=202,
        batch=True,
    )


class TransferAccepted(msgspec.Struct, kw_only=True):
    """The front's 202 for a transfer: stored in the events topic at its source's partition, not yet applied.

    What became of it: the source's TRANSFER entry (``GET /v1/journal`` there), or, when its partition's engine
    refused it (e.g. an overdraft), the refusal kept under its log position (docs/partitioned.md).
    """

    program_id: str
    asset_id: str
    source_external_id: str
    idempotency_key: str | None
    status: Literal["ACCEPTED"] = "ACCEPTED"
    log: LogPosition


def _routable(value: str | None, other: str | None, field: str) -> str:
    if value is None or other is not None:
        raise ValidationFailed.field(field, "required", "the partitioned front routes by external_id: give it")
    return canonical_external_id(value, _EXTERNAL_ID_MAX, field)


def _transfer_endpoint(log: EventLog) -> Endpoint:
    async def submit_transfer(call: Call) -> TransferAccepted:
        transfer: TransferCreate = call.body
        source = _routable(
            transfer.source_external_id,
            transfer.source_participant_id or transfer.source_group_id,
            "source_external_id",
        )
        for i, recipient in enumerate(transfer.recipients):
            _routable(
                recipient.external_id, recipient.participant_id or recipient.group_id, f"recipients[{i}].external_id"
            )
        position = await log.append(source, _encoder.encode(transfer), KIND_TRANSFER)
        return TransferAccepted(
            program_id=transfer.program_id,
            asset_id=transfer.asset_id,
            source_external_id=source,
            idempotency_key=transfer.idempotency_key,
            log=position,
        )

    return Endpoint(
        "POST",
        "/v1/transfers",
        submit_transfer,
        "Submit a transfer to its source's partition (202 once the broker stored it)",
        "Transfers",
        body=TransferCreate,
        response=TransferAccepted,
        status=202,
    )


class FundAccepted(msgspec.Struct, kw_only=True):
    """The front's 202 for a wallet's funding: stored at the wallet's owner partition, not yet applied (its FUND
    entry is in that partition's journal; a refusal is kept under its log position, ``GET /v1/log-records``)."""

    program_id: str
    asset_id: str
    amount: str
    status: Literal["ACCEPTED"] = "ACCEPTED"
    log: LogPosition


def _fund_endpoint(log: EventLog) -> Endpoint:
    async def fund_wallet(call: Call) -> FundAccepted:
        body: WalletOperation = call.body
        program_id, asset_id = call.path["program_id"], call.path["asset_id"]
        # What the front can judge without the asset: a positive decimal (its scale is checked at the owner,
        # whose refusal is kept under the record's position).
        if parse_decimal(body.amount, "amount") <= 0:
            raise ValidationFailed.field("amount", "invalid", "amount must be positive")
        fund = WalletFund(program_id=program_id, asset_id=asset_id, amount=body.amount, description=body.description)
        position = await log.append(wallet_routing_key(program_id, asset_id), _encoder.encode(fund), KIND_FUND)
        return FundAccepted(program_id=program_id, asset_id=asset_id, amount=body.amount, log=position)

    return Endpoint(
        "POST",
        "/v1/programs/{program_id}/assets/{asset_id}/fund",
        fund_wallet,
        "Fund a shared PREFUNDED wallet at its owner partition (202 once the broker stored it)",
        "Programs",
        body=WalletOperation,
        response=FundAccepted,
        status=202,
    )


def create_front_app(
    log: EventLog, keys: ApiKeys, limits: HttpLimits | None = None, readers: PartitionReaders | None = None
) -> QuartTrio:
    """The front's ASGI app: ``POST /v1/events``, ``/v1/events/batch``, ``/v1/transfers``, a wallet's funding and
    a participant's balance operations through the embedded view; with ``readers``, every GET routed to the
    partitions' readers (_front_reads.py); the rest a 501."""
    limits = limits or HttpLimits()
    app = QuartTrio("scrip_actor.partitioned.front")
    app.config["MAX_CONTENT_LENGTH"] = limits.batch_body_bytes_max  # each view enforces its own route's limit
    app.config["BODY_TIMEOUT"] = limits.body_read_timeout_s
    app.config["PROVIDE_AUTOMATIC_OPTIONS"] = False
    app.url_map.merge_slashes = False
    endpoints = [
        _submit_endpoint(log),
        _batch_endpoint(log, limits.batch_events_max),
        _transfer_endpoint(log),
        _fund_endpoint(log),
        *operation_endpoints(log, readers),
        *state_write_endpoints(log, readers),
    ]
    for endpoint in endpoints:
        # No engine behind the view: the handlers never read Call.engine.
        view = _view(endpoint, None, keys, limits)  # type: ignore[arg-type]
        app.add_url_rule(endpoint.quart_rule, endpoint=endpoint.name, view_func=view, methods=[endpoint.method])
    served = [f"{endpoint.method} {endpoint.path}" for endpoint in endpoints]
    served += ["GET /v1/..."] if readers is not None else []

    async def not_routed(rest: str) -> Response:
        return _error(
            NotRouted(
                f"the front role does not route {request.method} /v1/{rest}: it serves {', '.join(served)}",
                {"path": f"/v1/{rest}", "served": served},
            )
        )

    methods = ["POST", "PUT", "PATCH", "DELETE", *(["GET"] if readers is None else [])]
    app.add_url_rule("/v1/<path:rest>", endpoint="not_routed", view_func=not_routed, methods=methods)
    routes = {endpoint.name: endpoint.path for endpoint in endpoints} | {"not_routed": "/v1/{rest}"}
    if readers is not None:

        async def read(rest: str) -> Response:
            _authenticate(keys)
            return await serve_read(readers, rest)

        app.add_url_rule("/v1/<path:rest>", endpoint="read", view_func=read, methods=["GET"])
        routes["read"] = "/v1/{rest}"
    _install_hooks(app, HttpMetrics(), routes)
    _install_error_handlers(app)
    return app


async def serve_front(
    log: EventLog,
    config: Config,
    keys: ApiKeys,
    *,
    limits: HttpLimits | None = None,
    readers: PartitionReaders | None = None,
    shutdown_trigger: Callable[[], Awaitable[None]] | None = None,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the front on ``config.server.host:port`` (0: a free port, reported by ``task_status.started``)."""
    app = create_front_app(log, keys, limits, readers)
    await serve_app(app, config, shutdown_trigger=shutdown_trigger, task_status=task_status)
