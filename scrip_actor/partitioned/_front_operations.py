"""A participant's balance operations through the front: ``POST /v1/participants/{participant_id}/balances/...``.

``adjust``, ``hold``, ``release``, ``forfeit`` and ``void-hold`` are judged by the embedded view (API key, body
limits, the embedded route's body type: the same 400s), then produced as a ``scrip-kind: operation`` record
(:class:`~._operation_records.ParticipantOperation`) to the partition the participant id names (its first 8 hex
digits, ``_partition_ids.py``): the participant's own partition, so the operation is ordered with its events. An
id that names no partition is the embedded 404.

The embedded routes answer synchronously, and so does the front when it has the partitions' readers: it waits
(at most ``wait_s``) for the record's outcome under its log position (``GET /v1/log-records/...``, served by the
partition) and answers what the embedded route would have: 200 with the operation's answer, or the refusal's own
status and ``{code, message, details}`` (an overdraft's 422, an idempotency conflict's 409). If the outcome is
not there in time (the partition busy or restarting, its reader not answering), or the front has no readers, it
answers **202** with the record's ``log`` position, the receipt to ask ``GET /v1/log-records/{partition}/{offset}``
with later; sending the operation again with the same ``idempotency_key`` is then safe.

A points redemption (``POST /v1/participants/{participant_id}/redemptions``) goes the same way, keyed the same
way, with the id a new redemption gets named by the front (``{partition:08x}`` and random digits: in the record,
so a replay makes the same id, and ``GET /v1/redemptions/{id}`` is routed by it); the answer is the embedded 201,
or 200 when its key answered it before. Its reversal (``POST /v1/redemptions/{redemption_id}/reverse``) goes to the
partition the redemption's id names, with a reversal id named by the front; the record names the redemption only
(the front does not know its participant): that partition finds the participant and the program by it, parks the
reversal behind the participant's waiting events and claims its key in the program, as for the redemption.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any, Literal

import msgspec
import trio
from quart import g

from scrip_actor.errors import NotFound
from scrip_actor.http.errors import PartitionUnavailable
from scrip_actor.http.routing import Call, Endpoint, Reply
from scrip_actor.model import (
    AdjustResult,
    BalanceAdjust,
    BalanceOperation,
    BalanceOperationResult,
    ItemRedemptionCreate,
    Redemption,
    RedemptionCreate,
    Reversal,
    ReversalCreate,
)
from scrip_actor.partitioned._operation_records import (
    ITEM_REDEMPTION,
    OPERATION_PATHS,
    REDEMPTION,
    REVERSAL,
    ParticipantOperation,
)
from scrip_actor.partitioned._partition_ids import partition_of
from scrip_actor.partitioned._routing import KIND_OPERATION

if TYPE_CHECKING:
    from scrip_actor.partitioned._front import EventLog
    from scrip_actor.partitioned._front_reads import PartitionReaders

__all__ = [
    "OperationAccepted",
    "answer_of",
    "operation_endpoints",
    "participant_partition",
    "produce_and_answer",
]

OPERATION_WAIT_S = 10.0  # how long the front waits for an operation's outcome before answering 202
_POLL_S = 0.01  # between two asks for the outcome (a partition applies an operation in a few ms when idle)
_encoder = msgspec.json.Encoder()


class OperationAccepted(msgspec.Struct, kw_only=True):
    """The front's 202 for an operation whose outcome it did not see in time: stored at the participant's
    partition, perhaps not applied yet. ``log`` is the receipt (``GET /v1/log-records/{partition}/{offset}``)."""

    participant_id: str | None  # None for a reversal: its record names the redemption (``redemption_id``)
    operation: str
    idempotency_key: str | None
    status: Literal["ACCEPTED"] = "ACCEPTED"
    log: dict[str, Any]
    redemption_id: str | None = None  # a reversal's redemption


def operation_endpoints(
    log: EventLog, readers: PartitionReaders | None, wait_s: float = OPERATION_WAIT_S
) -> list[Endpoint]:
    """The five balance-operation routes of the front, and a points redemption's."""
    balances = [_endpoint(log, readers, segment, operation, wait_s) for segment, operation in OPERATION_PATHS.items()]
    redemptions = [_redemption_endpoint(log, readers, wait_s, item=item) for item in (False, True)]
    return [*balances, *redemptions, _reversal_endpoint(log, readers, wait_s)]


def _reversal_endpoint(log: EventLog, readers: PartitionReaders | None, wait_s: float) -> Endpoint:
    async def reverse_redemption(call: Call) -> Reply:
        redemption_id = call.path["redemption_id"]
        partition = partition_of(redemption_id)
        if partition is None or partition >= log.partitions:
            raise NotFound("redemption", redemption_id)
        command = ParticipantOperation(
            operation=REVERSAL,
            participant_id="",  # the partition finds it by the redemption
            redemption_id=redemption_id,
            reversal=call.body,
            reversal_id=f"{partition:08x}" + str(uuid.uuid4())[8:],
        )
        return await produce_and_answer(log, readers, command, redemption_id, partition, wait_s)

    return Endpoint(
        "POST",
        "/v1/redemptions/{redemption_id}/reverse",
        reverse_redemption,
        "Reverse at the redemption's partition (the embedded answer once applied, else 202 with its receipt)",
        "Redemptions",
        body=ReversalCreate,
        response=Reversal,
        status=201,
        also=(200, 202),
    )


def _redemption_endpoint(log: EventLog, readers: PartitionReaders | None, wait_s: float, *, item: bool) -> Endpoint:
    async def submit_redemption(call: Call) -> Reply:
        participant_id = call.path["participant_id"]
        partition = participant_partition(log, participant_id)
        command = ParticipantOperation(
            operation=ITEM_REDEMPTION if item else REDEMPTION,
            participant_id=participant_id,
            redemption=None if item else call.body,
            item=call.body if item else None,
            redemption_id=f"{partition:08x}" + str(uuid.uuid4())[8:],  # names its partition, as the participant's
        )
        return await produce_and_answer(log, readers, command, participant_id, partition, wait_s)

    submit_redemption.__name__ = "submit_item_redemption" if item else "submit_redemption"  # one route name each
    return Endpoint(
        "POST",
        "/v1/participants/{participant_id}/redemptions" + ("/items" if item else ""),
        submit_redemption,
        f"Redeem {'a catalog reward' if item else 'points'} at the participant's partition (the embedded answer once "
        "applied, else 202 with its receipt)",
        "Redemptions",
        body=ItemRedemptionCreate if item else RedemptionCreate,
        response=Redemption,
        status=201,
        also=(200, 202),
    )


def _endpoint(log: EventLog, readers: PartitionReaders | None, segment: str, operation: str, wait_s: float) -> Endpoint:
    adjust = operation == "ADJUST"

    async def submit_operation(call: Call) -> Reply:
        participant_id = call.path["participant_id"]
        partition = participant_partition(log, participant_id)
        command = ParticipantOperation(
            operation=operation,  # type: ignore[arg-type]
            participant_id=participant_id,
            adjust=call.body if adjust else None,
            balance=None if adjust else call.body,
        )
        return await produce_and_answer(log, readers, command, participant_id, partition, wait_s)

    submit_operation.__name__ = f"submit_{segment.replace('-', '_')}"  # the route's name: one per operation
    return Endpoint(
        "POST",
        f"/v1/participants/{{participant_id}}/balances/{segment}",
        submit_operation,
        f"{operation} at the participant's partition (the embedded answer once applied, else 202 with its receipt)",
        "Balances",
        body=BalanceAdjust if adjust else BalanceOperation,
        response=AdjustResult if adjust else BalanceOperationResult,
    )


def participant_partition(log: EventLog, participant_id: str) -> int:
    """The partition a participant id names (its first 8 hex digits); the embedded 404 if it names none."""
    partition = partition_of(participant_id)
    if partition is None or partition >= log.partitions:
        raise NotFound("participant", participant_id)
    return partition


async def produce_and_answer(
    log: EventLog,
    readers: PartitionReaders | None,
    command: ParticipantOperation,
    routing_key: str,
    partition: int,
    wait_s: float,
) -> Reply:
    """Produce ``command`` to ``partition``; the embedded route's answer once applied, else 202 with the receipt
    (the balance operations, a redemption, the state writes and the upsert all answer this way)."""
    position = await log.append(routing_key, _encoder.encode(command), KIND_OPERATION, partition=partition)
    if readers is not None:
        answered = await answer_of(readers, position.partition, position.offset, wait_s)
        if answered is not None:
            return answered
    body = command.adjust or command.balance or command.redemption or command.item or command.reversal
    reversal = command.reversal is not None
    accepted = OperationAccepted(
        participant_id=None if reversal else command.participant_id,
        operation=command.operation,
        idempotency_key=None if body is None else body.idempotency_key,
        log=msgspec.structs.asdict(position),
        redemption_id=command.redemption_id if reversal else None,
    )
    return Reply(202, accepted)


async def answer_of(readers: PartitionReaders, partition: int, offset: int, wait_s: float) -> Reply | None:
    """The embedded route's answer once the record at ``offset`` is judged; None if not within ``wait_s``."""
    target = f"/v1/log-records/{partition}/{offset}"
    with trio.move_on_after(wait_s):
        while True:
            try:
                answer = await readers.get(partition, target)
            except PartitionUnavailable:  # the record is stored: the client gets its receipt, not a 503
                return None
            if answer.status_code == 200:
                status = answer.json()
                if status["status"] == "APPLIED":  # a state write's own status (201, 204), else 200
                    return Reply(status.get("http_status") or 200, status["result"])
                if status["status"] == "REFUSED":
                    error = status["error"]
                    body = {key: error[key] for key in ("code", "message", "details")}
                    status_code = int(error.get("http_status", 422))  # kept before http_status: 422
                    return Reply(status_code, {**body, "request_id": g.get("request_id")})
            await trio.sleep(_POLL_S)
    return None
