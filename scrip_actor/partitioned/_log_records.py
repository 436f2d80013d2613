"""``GET /v1/log-records/{partition}/{offset}``: what became of a record the front acknowledged.

The front answers 202 with ``log{topic, partition, offset}`` before any engine has judged the record, so that
position is the client's receipt. This route, served by the partition's reader and routed by the front, answers
from the partition's store:

* ``PENDING`` — not read yet (the offset is at or past the stored consumed offset);
* ``PARKED`` — read, and waiting for its idempotency key's partition to claim the key (docs/partitioned.md);
* ``REFUSED`` — read and refused, with the kept ``{code, message, details}`` (an overdraft, a key another
  participant used first: ``idempotency_conflict``, a credit sent back);
* ``APPLIED`` — read and applied: for an event, admitted (its own status is then the event's, ``GET /v1/events``
  filtered by ``idempotency_key``); for a transfer, its entry is in the journal; for a balance operation or a
  state write, ``result`` is its answer, the embedded route's body, and ``http_status`` that route's status
  (200, or a state write's 201 or 204).

A refusal's ``error`` also carries ``http_status``, the status the embedded route answers it with.

An extension of ours: the hosted API answers synchronously and has no log.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from scrip_actor.engine import Engine, consumed_offset
from scrip_actor.errors import NotFound, ValidationFailed
from scrip_actor.http.routing import Call, Endpoint
from scrip_actor.partitioned._outcomes import applied_result, log_outcome
from scrip_actor.partitioned._parking import parked_db
from scrip_actor.store import be64

__all__ = ["LogRecordStatus", "log_record_endpoint", "log_record_status"]

_OFFSET_MAX = (1 << 63) - 1


class LogRecordStatus(msgspec.Struct, kw_only=True):
    """What became of the record at ``offset`` of ``partition`` of ``topic`` (see the module docstring)."""

    topic: str
    partition: int
    offset: int
    status: Literal["PENDING", "PARKED", "REFUSED", "APPLIED"]
    error: dict[str, Any] | None = None
    result: Any = None  # a balance operation's or a state write's answer (APPLIED)
    http_status: int | None = None  # the status the embedded route answers ``result`` with (APPLIED)


def _parked(engine: Engine, offset: int) -> bool:
    db = parked_db(engine._store.env)
    if db is None:
        return False
    # The store's cached reader, as for the consumed offset and the outcome read beside it: one snapshot for all,
    # or a record released from parking in a commit the cached reader does not see yet would read as applied
    # with no answer.
    return engine._store.get_side_raw(db, be64(offset)) is not None


def log_record_status(engine: Engine, topic: str, partition: int, offset: int) -> LogRecordStatus:
    """The status of one record of this partition's log, from its store."""
    log = f"{topic}/{partition}"
    if offset >= consumed_offset(engine, log):
        return LogRecordStatus(topic=topic, partition=partition, offset=offset, status="PENDING")
    if _parked(engine, offset):
        return LogRecordStatus(topic=topic, partition=partition, offset=offset, status="PARKED")
    refused = log_outcome(engine, log, offset)
    if refused is not None:
        return LogRecordStatus(topic=topic, partition=partition, offset=offset, status="REFUSED", error=refused)
    result, http_status = applied_result(engine, log, offset)
    return LogRecordStatus(
        topic=topic, partition=partition, offset=offset, status="APPLIED", result=result, http_status=http_status
    )


def _whole(text: str, field: str, upper: int) -> int:
    if not text.isdigit() or int(text) > upper:
        raise ValidationFailed.field(field, "invalid", f"{field} must be a whole number from 0 to {upper}")
    return int(text)


def log_record_endpoint(topic: str, partition: int) -> Endpoint:
    """The reader's route for partition ``partition`` (another partition's records are a 404 here)."""

    async def get_log_record(call: Call) -> LogRecordStatus:
        asked = _whole(call.path["partition"], "partition", 1 << 31)
        offset = _whole(call.path["offset"], "offset", _OFFSET_MAX)
        if asked != partition:
            raise NotFound("log record", f"{asked}/{offset}")
        return log_record_status(call.engine, topic, partition, offset)

    return Endpoint(
        "GET",
        "/v1/log-records/{partition}/{offset}",
        get_log_record,
        "What became of a record the front acknowledged (partitioned mode)",
        "Log",
        response=LogRecordStatus,
    )
