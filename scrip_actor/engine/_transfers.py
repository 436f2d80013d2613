"""Transfers: one source, 1-100 recipients, one TRANSFER journal entry — all of them or none.

A transfer is a balance operation (engine/_operations) of its **source**: it runs in the source's mailbox, in turn
with the source's events. The recipients' states are read and changed in that same synchronous step, as a rule's
``target`` is (docs/architecture.md): one ledger transaction covers every participant, so the transfer is atomic,
takes no lock and cannot deadlock, and a recipient sees it between two of its own steps, never inside one.
"""

from __future__ import annotations

from typing import Any

from scrip_actor import balance_ops
from scrip_actor.amounts import format_minor
from scrip_actor.engine._catalog import Catalog
from scrip_actor.engine._operations import Operations
from scrip_actor.engine._participant_cache import ParticipantCache
from scrip_actor.engine._validation import positive_minor, validated
from scrip_actor.errors import Conflict, NotFound, SelfTransfer, ValidationFailed
from scrip_actor.ledger import LedgerTx, ParticipantState
from scrip_actor.model import JournalEntry, TransferCreate, TransferResult
from scrip_actor.store import Op
from scrip_actor.values import external_id as canonical_external_id

__all__ = ["Transfers"]


class Transfers:
    """``POST /v1/transfers`` and ``engine.transfers.create`` (see the module docstring)."""

    def __init__(self, *, catalog: Catalog, cache: ParticipantCache, operations: Operations) -> None:
        self._catalog = catalog
        self._cache = cache
        self._operations = operations

    async def create(self, request: TransferCreate) -> tuple[TransferResult, bool]:
        """Move value from the source to every recipient. Returns ``(result, created)``; False on a replay."""
        request = validated(request)
        program = self._catalog.program(request.program_id)
        asset = self._catalog.asset(request.asset_id)
        if request.program_id not in asset.program_ids:
            raise ValidationFailed.field("asset_id", "not_linked", f"asset {asset.symbol} is not linked to the program")
        if program.status != "ACTIVE" or asset.status != "ACTIVE":
            raise Conflict("transfers need an ACTIVE program and asset")
        source = self._one(
            request.source_external_id, request.source_participant_id, request.source_group_id, "source_"
        )
        recipients = [
            (self._one(r.external_id, r.participant_id, r.group_id, f"recipients[{i}]."), r.amount)
            for i, r in enumerate(request.recipients)
        ]
        if any(state.id == source.id for state, _ in recipients):
            raise SelfTransfer("a transfer cannot name its source among its recipients", {"source_id": source.id})
        amounts = [
            (state.id, positive_minor(amount, asset.scale, f"recipients[{i}].amount"))
            for i, (state, amount) in enumerate(recipients)
        ]
        cache = self._cache

        def work(tx: LedgerTx, state: ParticipantState) -> int:
            found = [(cache.get(participant_id), amount) for participant_id, amount in amounts]
            for who in [state, *(recipient for recipient, _ in found)]:
                assert who is not None, "participants are never deleted"
                if who.status != "ACTIVE":
                    raise Conflict(f"participant {who.external_id!r} is {who.status}; transfers need ACTIVE ones")
            working = [(tx.touched(recipient.id) or recipient, amount) for recipient, amount in found]  # type: ignore[union-attr]
            return balance_ops.transfer(
                tx, state, working, asset, program_id=request.program_id, description=request.description
            )

        def answer(total: int, entry: JournalEntry, state: ParticipantState) -> tuple[TransferResult, list[Op]]:
            result = TransferResult(
                asset_id=asset.id,
                journal_entry_id=entry.id,
                recipient_count=len(amounts),
                source_id=state.id,
                total_amount=format_minor(total, asset.scale),
            )
            return result, []

        result, replayed = await self._operations.submit("TRANSFER", source.id, request, work, answer, TransferResult)
        return result, not replayed

    def _one(self, external_id: str | None, participant_id: str | None, group_id: str | None, field: str) -> Any:
        """The participant a source or recipient names: exactly one of external_id or participant_id (404 if
        unknown: a transfer never creates participants)."""
        if group_id is not None:
            raise ValidationFailed.field(f"{field}group_id", "invalid", "group transfers are not supported yet")
        if (external_id is None) == (participant_id is None):
            raise ValidationFailed.field(
                f"{field}external_id", "required", "give exactly one of external_id or participant_id"
            )
        if participant_id is not None:
            state = self._cache.get(participant_id)
        else:
            assert external_id is not None
            state = self._cache.by_external(canonical_external_id(external_id, 255))
        if state is None:
            raise NotFound("participant", participant_id or str(external_id))
        return state
