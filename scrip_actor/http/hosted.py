"""The hosted API's shapes of events, rule evaluations, journal entries and participants, derived at read time.

The engine stores what it needs and no more (an event's outcome is one letter per rule, see
``scrip_actor._event_records``; a journal entry is hash-chained in its own compact form). What a client of the hosted
Scrip API expects on top of that (``SUCCESS`` / ``SKIPPED_ERROR`` statuses, ``rule_history_id``, ``event_type``,
a posting's ``participant_id`` and ``asset_symbol``...) is computed here, when an answer is rendered, from what is
stored: no byte is added to the event path, and old stores answer in the new shape without a migration.

Evaluation statuses map through one table, :data:`EVALUATION_STATUS_OF_REASON`: our record's status and reason
code in, the hosted status out, plus whether the record is shown only with ``include_skipped=true``. A new skip
reason (a budget, say) is one line there. Our own fields (``outcome``: MATCHED / NOT_MATCHED / SKIPPED /
STOPPED, ``rule_version``) stay beside the hosted ones, because clients of this server read them
(docs/compatibility.md).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, NamedTuple

from msgspec import Struct

from scrip_actor.ledger import derived_id
from scrip_actor.model import (
    Bucket,
    EntityType,
    EvaluationStatus,
    Event,
    EventStatus,
    JournalEntry,
    Participant,
    ParticipantStatus,
    Posting,
    Rule,
    RuleEvaluation,
    RuleVersion,
)

__all__ = [
    "EVALUATION_STATUS_OF_REASON",
    "ActivityItem",
    "EvaluationRecord",
    "EventRecord",
    "JournalEntryRecord",
    "ParticipantItem",
    "PostingRecord",
    "RuleVersionRecord",
    "activity_item",
    "evaluation_record",
    "event_record",
    "journal_entry_record",
    "participant_item",
    "rule_history_id",
    "rule_version_record",
]

HostedEvaluationStatus = Literal["SUCCESS", "SKIPPED", "SKIPPED_ERROR", "SKIPPED_TIMEOUT"]


class Shown(NamedTuple):
    """How one kind of evaluation record appears in the hosted shape."""

    status: HostedEvaluationStatus
    hidden: bool  # listed only with include_skipped=true


# (our status, our reason code) -> the hosted status. The reason code is our reason up to its first ":" (errors
# carry their message after it, which becomes error_message). Add a skip reason here and nowhere else.
EVALUATION_STATUS_OF_REASON: dict[tuple[EvaluationStatus, str | None], Shown] = {
    ("MATCHED", None): Shown("SUCCESS", hidden=False),
    ("NOT_MATCHED", None): Shown("SKIPPED", hidden=False),  # reason CONDITION_FALSE (the hosted name is not known)
    ("STOPPED", "STOPPED_BY_PRIOR_RULE"): Shown("SKIPPED", hidden=False),
    ("SKIPPED", "OUTSIDE_TIME_WINDOW"): Shown("SKIPPED", hidden=False),
    ("SKIPPED", "BUDGET_EXCEEDED"): Shown("SKIPPED", hidden=False),
    ("SKIPPED", "CONDITION_ERROR"): Shown("SKIPPED_ERROR", hidden=True),
    ("SKIPPED", "CONDITION_NOT_BOOLEAN"): Shown("SKIPPED_ERROR", hidden=True),
    ("SKIPPED", "CONDITION_COST_EXCEEDED"): Shown("SKIPPED_TIMEOUT", hidden=True),  # our CEL cost bound = a timeout
}
# A skip whose reason the table does not know (written by a newer version, say) is an error skip: shown on request.
_UNKNOWN_SKIP = Shown("SKIPPED_ERROR", hidden=True)
_CONDITION_FALSE = "CONDITION_FALSE"


class EvaluationRecord(Struct, kw_only=True):
    """How one rule fared for one event, in the hosted shape plus our ``outcome`` and ``rule_version``."""

    id: str
    rule_id: str
    rule_name: str
    rule_history_id: str  # the rule version used: the ``id`` of that entry of GET /v1/rules/{id}/history
    status: HostedEvaluationStatus
    reason: str | None
    stopped_by_rule_id: str | None
    error_message: str | None
    created_at: datetime
    outcome: EvaluationStatus  # ours: MATCHED | NOT_MATCHED | SKIPPED | STOPPED (the `status` before issue 13)
    rule_version: int


class EventRecord(Struct, kw_only=True):
    """An event and its outcome, with the hosted ``event_type``, ``received_at`` and ``updated_at``."""

    id: str
    program_id: str
    external_id: str
    participant_id: str | None
    idempotency_key: str
    event_timestamp: datetime
    event_data: dict[str, Any]
    event_type: Literal["EXTERNAL", "SYSTEM"]
    status: EventStatus
    error_message: str | None
    rule_evaluations: list[EvaluationRecord]
    journal_entry_ids: list[str]
    attempts: int
    created_at: datetime
    received_at: datetime
    processed_at: datetime | None
    updated_at: datetime


class PostingRecord(Struct, kw_only=True):
    """One leg of an entry, with the hosted owner fields (``participant_id``, ``program_id``) and ``asset_symbol``."""

    id: str
    entity_type: EntityType
    entity_id: str
    participant_id: str | None
    group_id: str | None
    program_id: str | None
    asset_id: str
    asset_symbol: str | None
    bucket: Bucket
    amount: str
    amount_minor: int
    created_at: datetime


class JournalEntryRecord(Struct, kw_only=True):
    """A journal entry as stored (its hash covers exactly that), its postings rendered with the hosted fields."""

    id: str
    sequence: int
    action_type: str
    program_id: str | None
    program_name: str | None
    event_id: str | None
    rule_id: str | None
    reference_id: str | None
    description: str | None
    created_by_api_key_id: str | None  # always null: this server does not record which key made a change
    created_at: datetime
    postings: list[PostingRecord]
    previous_hash: str
    entry_hash: str


class ActivityItem(Struct, kw_only=True):
    """One balance operation of a participant: one of its postings (``GET .../activity/history``)."""

    action_type: str
    amount: str
    asset_id: str
    asset_symbol: str | None
    bucket: Bucket
    description: str | None
    event_id: str | None
    event_timestamp: datetime | None
    journal_entry_id: str
    program_id: str | None
    reference_id: str | None
    created_by_api_key_id: str | None
    created_at: datetime


class ParticipantItem(Struct, kw_only=True):
    """A participant in a list: id, external id, status, profile fields and timestamps (the hosted slim shape)."""

    id: str
    external_id: str
    status: ParticipantStatus
    email: str | None
    phone: str | None
    first_name: str | None
    last_name: str | None
    display_name: str | None
    created_at: datetime
    updated_at: datetime


class RuleVersionRecord(Struct, kw_only=True):
    """One entry of a rule's history, with the hosted ``id`` (= ``rule_history_id``) and ``program_id``."""

    id: str
    rule_id: str
    program_id: str
    version: int
    change_type: str
    changes: list[str]
    changed_at: datetime
    changed_by_api_key_id: str | None
    snapshot: Rule


def rule_history_id(rule_id: str, version: int) -> str:
    """The id of version ``version`` of rule ``rule_id``: deterministic, so it is derived, never stored."""
    return derived_id(f"rule_history:{rule_id}", version)


def evaluation_record(event: Event, index: int, evaluation: RuleEvaluation) -> tuple[EvaluationRecord, bool]:
    """The hosted record of one evaluation, and whether it is hidden unless ``include_skipped=true``."""
    reason_code, _, detail = (evaluation.reason or "").partition(":")
    code = reason_code or None
    shown = EVALUATION_STATUS_OF_REASON.get((evaluation.status, code), _UNKNOWN_SKIP)
    reason = _CONDITION_FALSE if evaluation.status == "NOT_MATCHED" else code
    record = EvaluationRecord(
        id=derived_id(f"evaluation:{event.id}", index + 1),
        rule_id=evaluation.rule_id,
        rule_name=evaluation.rule_name,
        rule_history_id=rule_history_id(evaluation.rule_id, evaluation.rule_version),
        status=shown.status,
        reason=reason,
        stopped_by_rule_id=evaluation.stopped_by_rule_id,
        error_message=(detail.strip() or evaluation.reason) if shown.hidden else None,
        created_at=event.processed_at or event.created_at,
        outcome=evaluation.status,
        rule_version=evaluation.rule_version,
    )
    return record, shown.hidden


def event_record(event: Event, *, include_skipped: bool) -> EventRecord:
    """The hosted shape of an event; error and timeout skips only when ``include_skipped``."""
    evaluations = []
    for index, evaluation in enumerate(event.rule_evaluations):
        record, hidden = evaluation_record(event, index, evaluation)
        if include_skipped or not hidden:
            evaluations.append(record)
    return EventRecord(
        id=event.id,
        program_id=event.program_id,
        external_id=event.external_id,
        participant_id=event.participant_id,
        idempotency_key=event.idempotency_key,
        event_timestamp=event.event_timestamp,
        event_data=event.event_data,
        event_type=event.event_type,  # SYSTEM: an automation made it (docs/automations.md)
        status=event.status,
        error_message=event.error_message,
        rule_evaluations=evaluations,
        journal_entry_ids=event.journal_entry_ids,
        attempts=event.attempts,
        created_at=event.created_at,
        received_at=event.created_at,
        processed_at=event.processed_at,
        updated_at=event.processed_at or event.created_at,
    )


def _posting_record(entry: JournalEntry, index: int, posting: Posting, symbols: dict[str, str]) -> PostingRecord:
    return PostingRecord(
        id=derived_id(f"posting:{entry.id}", index + 1),
        entity_type=posting.entity_type,
        entity_id=posting.entity_id,
        participant_id=posting.entity_id if posting.entity_type == "PARTICIPANT" else None,
        group_id=None,  # groups are not built
        program_id=posting.entity_id if posting.entity_type == "PROGRAM" else entry.program_id,
        asset_id=posting.asset_id,
        asset_symbol=symbols.get(posting.asset_id),
        bucket=posting.bucket,
        amount=posting.amount,
        amount_minor=posting.amount_minor,
        created_at=entry.created_at,
    )


def journal_entry_record(entry: JournalEntry, symbols: dict[str, str], programs: dict[str, str]) -> JournalEntryRecord:
    """The hosted shape of a stored entry; ``symbols`` and ``programs`` name assets and programs by id."""
    return JournalEntryRecord(
        id=entry.id,
        sequence=entry.sequence,
        action_type=entry.action_type,
        program_id=entry.program_id,
        program_name=programs.get(entry.program_id) if entry.program_id else None,
        event_id=entry.event_id,
        rule_id=entry.rule_id,
        reference_id=entry.reference_id,
        description=entry.description,
        created_by_api_key_id=None,
        created_at=entry.created_at,
        postings=[_posting_record(entry, i, posting, symbols) for i, posting in enumerate(entry.postings)],
        previous_hash=entry.previous_hash,
        entry_hash=entry.entry_hash,
    )


def activity_item(
    entry: JournalEntry, posting: Posting, event_timestamp: datetime | None, symbols: dict[str, str]
) -> ActivityItem:
    """One of the participant's postings as a balance operation (``event_timestamp``: of the event behind it)."""
    return ActivityItem(
        action_type=entry.action_type,
        amount=posting.amount,
        asset_id=posting.asset_id,
        asset_symbol=symbols.get(posting.asset_id),
        bucket=posting.bucket,
        description=entry.description,
        event_id=entry.event_id,
        event_timestamp=event_timestamp,
        journal_entry_id=entry.id,
        program_id=entry.program_id,
        reference_id=entry.reference_id,
        created_by_api_key_id=None,
        created_at=entry.created_at,
    )


def participant_item(participant: Participant) -> ParticipantItem:
    """The slim list shape of a participant (GET /v1/participants/{id} still answers the full one)."""
    return ParticipantItem(
        id=participant.id,
        external_id=participant.external_id,
        status=participant.status,
        email=participant.email,
        phone=participant.phone,
        first_name=participant.first_name,
        last_name=participant.last_name,
        display_name=participant.display_name,
        created_at=participant.created_at,
        updated_at=participant.updated_at,
    )


def rule_version_record(version: RuleVersion) -> RuleVersionRecord:
    """A history entry with its derived id (the ``rule_history_id`` of evaluations made against it)."""
    return RuleVersionRecord(
        id=rule_history_id(version.rule_id, version.version),
        rule_id=version.rule_id,
        program_id=version.snapshot.program_id,
        version=version.version,
        change_type=version.change_type,
        changes=version.changes,
        changed_at=version.changed_at,
        changed_by_api_key_id=None,
        snapshot=version.snapshot,
    )
