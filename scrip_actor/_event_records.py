"""How an event and its outcome are stored (schema 5): the payload once, the outcome beside it, both compact.

An event is written once, at admission, under ``events/be64(sequence)``: its fields as a JSON array and its
``event_data`` spliced in as the bytes admission already encoded (``msgspec.Raw``), so the payload is encoded
exactly once in its life. Its id is not stored (it is its sequence, see scrip_actor.ids).

Processing writes the outcome under ``event_outcomes/be64(sequence)``, never rewriting the event: status,
attempts, time, participant, error, the journal sequences of the entries it posted, and the rule evaluations as
one letter per rule of the *rule set* in force (``rule_sets/be32(id)``: the ids, versions and names of a program's
active rules, stored once when first used) plus the reasons of the skipped ones. Ten evaluations cost ~10 bytes
instead of ~1.5 KB of repeated ids and names; the API still sees every field (:func:`decode_event`).

No outcome record means PENDING and never attempted. A retried event's outcome is rewritten with status
PENDING and its attempts so far, until its next outcome replaces it (stores before schema 9 wrote RECEIVED
there, which reads back as PENDING).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import msgspec

from scrip_actor.ids import KIND_ENTRY, KIND_EVENT, SequenceIds
from scrip_actor.model import Event, RuleEvaluation

__all__ = [
    "RuleSetMembers",
    "StoredEvent",
    "StoredOutcome",
    "decode_event",
    "encode_event",
    "encode_outcome",
    "evaluation_codes",
]

# One rule set: (rule id, version, name) of each rule, by order.
RuleSetMembers = list[tuple[str, int, str]]

_CODE_OF_STATUS = {"MATCHED": "M", "NOT_MATCHED": "N", "STOPPED": "T"}
_OUTSIDE_WINDOW = "OUTSIDE_TIME_WINDOW"
_STOPPED_REASON = "STOPPED_BY_PRIOR_RULE"


class StoredEvent(msgspec.Struct, array_like=True, frozen=True):
    """An event as admitted (its id and sequence are its key)."""

    program_id: str
    external_id: str
    participant_id: str | None  # named by the client (bound at admission), else None
    idempotency_key: str
    event_timestamp: datetime
    created_at: datetime
    payload_hash: str
    event_data: msgspec.Raw
    # Schema 10: "SYSTEM" for an automation's event; absent (the array ends before it) for a client's.
    event_type: str = "EXTERNAL"


class StoredOutcome(msgspec.Struct, array_like=True, frozen=True):
    """What processing an event produced (see the module docstring)."""

    status: str
    attempts: int
    processed_at: datetime | None
    participant_id: str | None
    error_message: str | None
    entry_sequences: list[int]
    rule_set: int  # 0: no rule was evaluated
    codes: str  # one letter per rule of the set: M N T (stopped), O (outside its window), S (skipped, reason below)
    reasons: list[tuple[int, str]]  # (index, reason) of each S


# encode_event writes a StoredEvent as a tuple of these fields, in this order.
assert StoredEvent.__struct_fields__ == (
    "program_id",
    "external_id",
    "participant_id",
    "idempotency_key",
    "event_timestamp",
    "created_at",
    "payload_hash",
    "event_data",
    "event_type",
), "StoredEvent's fields changed: change encode_event with them"

_event_encoder = msgspec.json.Encoder()
_event_decoder = msgspec.json.Decoder(StoredEvent)
_outcome_decoder = msgspec.json.Decoder(StoredOutcome)
_data_decoder = msgspec.json.Decoder(dict[str, Any])


def encode_event(event: Event, data_json: bytes) -> bytes:
    """The ``events`` record of a newly admitted event; ``data_json`` is its event_data as admission encoded it.

    The fields go out as a tuple in :class:`StoredEvent`'s order: the same JSON array the Struct encodes to
    (it is array-like), without building one per admitted event.
    """
    fields = (
        event.program_id,
        event.external_id,
        event.participant_id,
        event.idempotency_key,
        event.event_timestamp,
        event.created_at,
        event.payload_hash,
        msgspec.Raw(data_json),
    )
    if event.event_type != "EXTERNAL":  # a client's event stays as schema 9 wrote it: no byte more per event
        fields = (*fields, event.event_type)
    return _event_encoder.encode(fields)


def evaluation_codes(evaluations: list[RuleEvaluation]) -> tuple[str, list[tuple[int, str]]]:
    """The letters and the skipped rules' reasons of an event's evaluations (inverse: :func:`decode_event`)."""
    codes = []
    reasons = []
    for index, evaluation in enumerate(evaluations):
        code = _CODE_OF_STATUS.get(evaluation.status)
        if code is None:  # SKIPPED
            assert evaluation.reason is not None
            if evaluation.reason == _OUTSIDE_WINDOW:
                code = "O"
            else:
                code = "S"
                reasons.append((index, evaluation.reason))
        codes.append(code)
    return "".join(codes), reasons


def encode_outcome(
    event: Event,
    rule_set: int,
    entry_sequences: list[int],
    status: str | None = None,
    coded: tuple[str, list[tuple[int, str]]] | None = None,
) -> bytes:
    """The ``event_outcomes`` record of a processed (or retried) event; ``status`` overrides the event's, and
    ``coded`` gives its evaluations' letters and reasons when the evaluation already wrote them."""
    codes, reasons = coded if coded is not None else evaluation_codes(event.rule_evaluations)
    assert len(codes) == len(event.rule_evaluations), "one letter per evaluation"
    assert (rule_set == 0) == (not codes), "evaluations come with the rule set they were made against"
    return _event_encoder.encode(
        StoredOutcome(
            status or event.status,
            event.attempts,
            event.processed_at,
            event.participant_id,
            event.error_message,
            entry_sequences,
            rule_set,
            codes,
            reasons,
        )
    )


def decode_event(
    sequence: int,
    raw_event: bytes,
    raw_outcome: bytes | None,
    ids: SequenceIds,
    rule_sets: Mapping[int, RuleSetMembers],
) -> Event:
    """The API's Event from its two records (the outcome may be absent: not processed yet)."""
    stored = _event_decoder.decode(raw_event)
    event = Event(
        id=ids.make(KIND_EVENT, sequence),
        sequence=sequence,
        program_id=stored.program_id,
        external_id=stored.external_id,
        idempotency_key=stored.idempotency_key,
        event_timestamp=stored.event_timestamp,
        event_data=_data_decoder.decode(stored.event_data),
        participant_id=stored.participant_id,
        created_at=stored.created_at,
        payload_hash=stored.payload_hash,
        event_type=stored.event_type,  # type: ignore[arg-type]
    )
    if raw_outcome is None:
        return event
    outcome = _outcome_decoder.decode(raw_outcome)
    event.status = "PENDING" if outcome.status == "RECEIVED" else outcome.status  # type: ignore[assignment]
    event.attempts = outcome.attempts
    event.processed_at = outcome.processed_at
    event.participant_id = outcome.participant_id
    event.error_message = outcome.error_message
    event.journal_entry_ids = [ids.make(KIND_ENTRY, entry) for entry in outcome.entry_sequences]
    if outcome.codes:
        event.rule_evaluations = _evaluations(outcome, rule_sets[outcome.rule_set])
    return event


def decode_stored_event(raw_event: bytes) -> StoredEvent:
    """An event record alone (verify, recovery)."""
    return _event_decoder.decode(raw_event)


def _evaluations(outcome: StoredOutcome, members: RuleSetMembers) -> list[RuleEvaluation]:
    assert len(outcome.codes) == len(members), "an outcome's codes and its rule set disagree"
    reasons = dict(outcome.reasons)
    stopper: str | None = None
    evaluations = []
    for index, (code, (rule_id, version, name)) in enumerate(zip(outcome.codes, members, strict=True)):
        status, reason, stopped_by = "MATCHED", None, None
        if code == "M":
            last_matched = rule_id
        elif code == "N":
            status = "NOT_MATCHED"
        elif code == "O":
            status, reason = "SKIPPED", _OUTSIDE_WINDOW
        elif code == "S":
            status, reason = "SKIPPED", reasons[index]
        else:
            assert code == "T", f"unknown evaluation code {code!r}"
            # Every rule after the one that stopped the chain is stopped by it: the last MATCHED before them.
            stopper = stopper or last_matched
            status, reason, stopped_by = "STOPPED", _STOPPED_REASON, stopper
        evaluations.append(
            RuleEvaluation(
                rule_id=rule_id,
                rule_name=name,
                rule_version=version,
                status=status,  # type: ignore[arg-type]
                reason=reason,
                stopped_by_rule_id=stopped_by,
            )
        )
    return evaluations
