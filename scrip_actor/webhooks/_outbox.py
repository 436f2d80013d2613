"""The transactional outbox: the §8.1 events of a committed change, as ops of the change's own writer record.

:meth:`Outbox.change_ops` and :meth:`Outbox.outcome_ops` are called by the Publisher while it builds a record, so
an event is on disk exactly when the change it reports is (one LMDB transaction), across crashes. Each event is
one ``webhook_events`` record (the envelope's bytes, encoded once) plus, per endpoint subscribed to its type, a
PENDING delivery, its place in the endpoint's queue and in the endpoint's list.

Cost rule: with no endpoint subscribed to a type, the cost of a change of that type is one set lookup
(:attr:`Outbox.subscribed`, rebuilt on every endpoint change); no envelope is built that nobody will receive.
Ids are derived from what is reported (a journal entry id, an event id and attempt, a state-change sequence, a
participant id), so a change re-run after a crash reports under the same webhook event id.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

import msgspec

from scrip_actor.amounts import format_minor
from scrip_actor.ledger import Changes, derived_id
from scrip_actor.model import Event, JournalEntry, Posting
from scrip_actor.store import Op, Store, be64, encode, unbe64
from scrip_actor.webhooks._model import (
    API_VERSION,
    OutboxRecord,
    StoredDelivery,
    WebhookDelivery,
    WebhookEndpoint,
)

__all__ = ["Outbox", "delivery_id", "queue_key"]

# Journal entry action type -> its webhook type (ADJUST: by the sign of its participant posting).
_ENTRY_TYPES = {
    "CREDIT": "balance.credited",
    "SETTLE": "balance.credited",
    "DEBIT": "balance.debited",
    "FORFEIT": "balance.debited",
    "VOID_HOLD": "balance.debited",
    "EXPIRATION": "balance.expired",
    "HOLD": "balance.held",
    "RELEASE": "balance.released",
    "REDEMPTION": "redemption.completed",
    "REDEMPTION_REVERSAL": "redemption.reversed",
    "TRANSFER": "transfer.completed",
    "FUND": "program.funded",
    "BURN": "program.burned",
}
_encoder = msgspec.json.Encoder()


def queue_key(endpoint_id: str, sequence: int) -> bytes:
    """``webhook_queue`` / ``webhook_by_endpoint`` key: endpoint id, NUL, the outbox sequence."""
    return endpoint_id.encode() + b"\0" + be64(sequence)


def delivery_id(webhook_event_id: str, endpoint_id: str) -> str:
    """The delivery of one event to one endpoint (deterministic, like the event's id)."""
    return derived_id(f"{webhook_event_id}/{endpoint_id}", 1)


def _amount(posting_amount: str) -> str:
    return posting_amount.removeprefix("-")


class Outbox:
    """The subscriptions in force and the outbox's sequence; builds the outbox ops of a record (synchronous)."""

    def __init__(self, clock: Callable[[], datetime], attempts_max: int, organization_id: str | None = None) -> None:
        self._clock = clock
        self._attempts_max = attempts_max
        self._organization_id = organization_id
        self.subscribed: frozenset[str] = frozenset()  # the types some ACTIVE endpoint wants
        self._by_type: dict[str, tuple[str, ...]] = {}  # type -> ACTIVE endpoint ids
        self.sequence = 0  # the last outbox sequence appended
        self.appended = False  # set when a record got outbox ops; the worker is woken after the commit

    def load(self, store: Store) -> None:
        """The outbox sequence goes on from the last stored record."""
        last = next(store.scan("webhook_events", reverse=True), None)
        self.sequence = unbe64(last[0]) if last else 0

    def subscribe(self, endpoints: Iterable[WebhookEndpoint], all_types: frozenset[str]) -> None:
        """Rebuild the subscriptions from the endpoints (on every endpoint change, before its record is appended)."""
        by_type: dict[str, list[str]] = {}
        for endpoint in endpoints:
            if endpoint.status != "ACTIVE":
                continue
            types = all_types if "*" in endpoint.enabled_events else endpoint.enabled_events
            for name in types:
                by_type.setdefault(name, []).append(endpoint.id)
        self._by_type = {name: tuple(ids) for name, ids in by_type.items()}
        self.subscribed = frozenset(self._by_type)

    # --- the Publisher's calls ------------------------------------------------------------------------------

    def change_ops(self, changes: Changes) -> list[Op]:
        """The outbox ops of a committed change (before its own ops are built: new participants are still new)."""
        subscribed = self.subscribed
        ops: list[Op] = []
        if "participant.created" in subscribed:
            for state in changes.participants:
                if state.stored_external_id is None:
                    data = {"participant_id": state.id, "external_id": state.external_id}
                    data["program_ids"] = list(state.program_ids)  # type: ignore[assignment]
                    self._add(ops, "participant.created", f"participant:{state.id}", data)
        for entry in changes.entries:
            kind = _ENTRY_TYPES.get(entry.action_type)
            if kind is None and entry.action_type == "ADJUST":
                kind = _adjust_type(entry)
            if kind in subscribed:
                self._add(ops, kind, f"entry:{entry.id}", _entry_data(kind, entry))
        if "participant.tier_changed" in subscribed:
            for participant_id, sequence, fields in changes.state_changes:
                if fields[0] == "tier":
                    self._add(ops, "participant.tier_changed", f"state:{sequence}", _tier_data(participant_id, fields))
        return ops

    def outcome_ops(self, event: Event, failed: bool) -> list[Op]:
        """The ``event.completed`` / ``event.failed`` of an event's outcome (``event`` carries it)."""
        kind = "event.failed" if failed else "event.completed"
        if kind not in self.subscribed:
            return []
        data = {
            "event_id": event.id,
            "program_id": event.program_id,
            "participant_id": event.participant_id,
            "external_id": event.external_id,
            "status": "FAILED" if failed else "COMPLETED",
            "error_message": event.error_message,
            "journal_entry_ids": event.journal_entry_ids,
            "attempt": event.attempts,
        }
        ops: list[Op] = []
        self._add(ops, kind, f"event:{event.id}:{event.attempts}", data)
        return ops

    def _add(self, ops: list[Op], kind: str, source: str, data: dict[str, Any]) -> None:
        now = self._clock()
        webhook_event_id = derived_id("webhook:" + source, 0)
        envelope = _encoder.encode(
            {
                "id": webhook_event_id,
                "type": kind,
                "api_version": API_VERSION,
                "created_at": now,
                "organization_id": self._organization_id,
                "data": data,
            }
        )
        endpoints = self._by_type[kind]
        self.sequence += 1
        sequence = self.sequence
        ops.append(
            ("webhook_events", be64(sequence), encode(OutboxRecord(msgspec.Raw(envelope), list(endpoints), now)))
        )
        for endpoint_id in endpoints:
            delivery = WebhookDelivery(
                id=delivery_id(webhook_event_id, endpoint_id),
                webhook_endpoint_id=endpoint_id,
                webhook_event_id=webhook_event_id,
                event_type=kind,
                status="PENDING",
                max_attempts=self._attempts_max,
                next_attempt_at=now,
                created_at=now,
                updated_at=now,
            )
            key = queue_key(endpoint_id, sequence)
            ops.append(
                ("webhook_deliveries", delivery.id.encode(), encode(StoredDelivery(delivery=delivery, outbox=sequence)))
            )
            ops.append(("webhook_queue", key, delivery.id.encode()))
            ops.append(("webhook_by_endpoint", key, delivery.id.encode()))
        self.appended = True


def _adjust_type(entry: JournalEntry) -> str:
    participant = next(posting for posting in entry.postings if posting.entity_type == "PARTICIPANT")
    return "balance.credited" if participant.amount_minor > 0 else "balance.debited"


def _entry_data(kind: str, entry: JournalEntry) -> dict[str, Any]:
    """An entry's data: its participant (or program) leg, asset, amount and bucket, and what caused it."""
    data: dict[str, Any] = {
        "journal_entry_id": entry.id,
        "program_id": entry.program_id,
        "event_id": entry.event_id,
        "rule_id": entry.rule_id,
        "reference_id": entry.reference_id,
        "action_type": entry.action_type,
    }
    participant = [posting for posting in entry.postings if posting.entity_type == "PARTICIPANT"]
    if kind == "transfer.completed":
        source = next(posting for posting in participant if posting.amount_minor < 0)
        data.update(asset_id=source.asset_id, amount=_amount(source.amount), source_participant_id=source.entity_id)
        data["recipients"] = [
            {"participant_id": posting.entity_id, "amount": posting.amount}
            for posting in participant
            if posting.amount_minor > 0
        ]
        return data
    if not participant:  # FUND / BURN: the program wallet's leg
        wallet = next(posting for posting in entry.postings if posting.entity_type == "PROGRAM")
        data.update(asset_id=wallet.asset_id, amount=_amount(wallet.amount), bucket=wallet.bucket)
        return data
    # The leg that names the change: the gaining bucket of a credit, hold or release, the losing one otherwise.
    gains = kind in ("balance.credited", "balance.held", "balance.released", "redemption.reversed")
    leg = next((p for p in participant if (p.amount_minor > 0) == gains), participant[0])
    data.update(participant_id=leg.entity_id, asset_id=leg.asset_id, amount=_amount(leg.amount), bucket=leg.bucket)
    if entry.action_type == "SETTLE":
        data["settle"] = _settle(participant)
    return data


def _settle(participant: list[Posting]) -> dict[str, str]:
    """§8.2's ``settle: {held_amount, delta}`` of a SETTLE entry (balance_ops.py: one leg takes the provisional
    value out of HELD, one puts the settled amount into AVAILABLE); delta = settled - held, positive when more was
    settled than held. Exact: the amounts' own decimal texts and the minor units, at the postings' scale."""
    held = next(posting for posting in participant if posting.bucket == "HELD" and posting.amount_minor < 0)
    settled = next(posting for posting in participant if posting.bucket == "AVAILABLE" and posting.amount_minor > 0)
    scale = len(settled.amount.partition(".")[2])
    assert scale == len(held.amount.partition(".")[2]), "the legs of one entry share their asset's scale"
    return {
        "held_amount": _amount(held.amount),
        "delta": format_minor(settled.amount_minor + held.amount_minor, scale),  # the HELD leg is negative
    }


def _tier_data(participant_id: str, fields: tuple[object, ...]) -> dict[str, Any]:
    _, key, operation, old, new, source, rule_id, event_id, program_id = fields[:9]
    return {
        "participant_id": participant_id,
        "program_id": program_id,
        "tier_key": key,
        "operation": operation,
        "previous_level": old,
        "new_level": new,
        "source": source,
        "event_id": event_id,
        "rule_id": rule_id,
    }
