"""Participant administration: the changes an operator makes to a participant, outside any event.

Creating a participant, editing its profile, status, tags, counters and attributes all go the way an event's
effects go: a ledger transaction edits a working copy of the participant's state, the limits are checked on that
copy, and the committed changes are published through the engine's sink, which swaps the new state into the
participant cache. So an operator's edit and an event's step never see each other half-done, and the edit
returns only once it is durable.

Input is put in canonical form first (``scrip_actor.values``: NFC external ids, lowercased tags, checked keys),
so ``"Jose\\u0301"`` and ``"José"`` are one participant and the limits count what is stored.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

import msgspec

from scrip_actor import values
from scrip_actor.amounts import parse_decimal
from scrip_actor.config import Limits
from scrip_actor.counters import window_from
from scrip_actor.durations import parse_duration
from scrip_actor.engine._catalog import Catalog
from scrip_actor.engine._step import new_participant
from scrip_actor.engine._validation import new_id, validated
from scrip_actor.errors import Conflict, NotFound, ValidationFailed
from scrip_actor.ledger import Changes, LedgerTx, ParticipantState, World
from scrip_actor.model import Participant, ParticipantCreate, ParticipantUpdate
from scrip_actor.store import Op, Writer

# More ops for a change's own record, given the participant it answers (partitioned mode: the log offset and the
# answer kept under it; scrip_actor/partitioned/_state_writes.py).
RecordOps = Callable[[Participant], list[Op]]
_PROFILE_FIELDS = ("email", "phone", "first_name", "last_name", "display_name")


class ParticipantAdmin:
    """Create and edit participants; every method returns the participant once the change is durable.

    Args:
        world: the ledger's shared state (a transaction's base; assets for the public view).
        limits: the input bounds (tags, counters and attributes per participant, external id length).
        clock: wall-clock source for ``updated_at`` and the entry's time.
        writer: to wait until a change is durable.
        catalog: resolves the program a participant is enrolled in (NotFound otherwise).
        participant: the participant with this id, cached or loaded, or None.
        participant_by_external: the participant with this (canonical) external id, or None.
        external_ids: the participant cache's index by external id; a rename unhooks the old name from it.
        publish: appends a committed transaction's changes (the engine's sink) and returns its ticket.
    """

    def __init__(
        self,
        *,
        world: World,
        limits: Limits,
        clock: Callable[[], datetime],
        writer: Writer,
        catalog: Catalog,
        participant: Callable[[str], ParticipantState | None],
        participant_by_external: Callable[[str], ParticipantState | None],
        external_ids: dict[str, str],
        publish: Callable[[Changes, list[Op]], int],
    ) -> None:
        self._world = world
        self._limits = limits
        self._clock = clock
        self._writer = writer
        self._catalog = catalog
        self._participant = participant
        self._participant_by_external = participant_by_external
        self._external_ids = external_ids
        self._publish = publish

    def _require(self, participant_id: str) -> ParticipantState:
        state = self._participant(participant_id)
        if state is None:
            raise NotFound("participant", participant_id)
        return state

    async def create_participant(
        self,
        request: ParticipantCreate,
        participant_id: str | None = None,
        record_ops: Callable[[Participant, bool], list[Op]] | None = None,
    ) -> tuple[Participant, bool]:
        """Create a participant, or update the one with this external_id. Returns ``(participant, created)``.

        ``participant_id``: the id a new participant gets (None: a random one); ``record_ops(participant, created)``
        as for :meth:`_mutate_participant` (partitioned mode: the front names the id, of its partition)."""
        request = validated(request)
        request = msgspec.structs.replace(request, **self._canonical_profile(request))
        if request.program_id is not None:
            self._catalog.program(request.program_id)
        existing = self._participant_by_external(request.external_id)
        now = self._clock()
        created = existing is None
        tx = LedgerTx(self._world, now=now, id_seed=new_id(), program_id=request.program_id)
        if existing is None:
            if participant_id is not None and self._participant(participant_id) is not None:
                raise Conflict(f"participant id {participant_id} is another participant's")
            state = tx.adopt_new(new_participant(request.external_id, now, participant_id or new_id()))
        else:
            state = tx.edit(existing)
        before = _StateSnapshot.of(state)
        if request.status is not None:
            state.status = request.status
        _apply_profile(state, request)
        if request.tags is not None:
            state.tags = set(request.tags)
        if request.attributes is not None:
            state.attributes.update(request.attributes)
        if request.program_id is not None and request.program_id not in state.program_ids:
            state.program_ids.append(request.program_id)
        state.invalidate()
        self._check_participant_limits(state)
        before.note_changes(tx, state)
        changes = tx.commit(now)
        answer = state.public(self._world.assets, now)
        ticket = self._publish(changes, [] if record_ops is None else record_ops(answer, created))
        await self._writer.wait_durable(ticket)
        return answer, created

    def _canonical_profile(self, request: ParticipantCreate | ParticipantUpdate) -> dict[str, Any]:
        """The request's external id, tags and attribute keys in canonical form (``values``): fields to replace."""
        canonical: dict[str, Any] = {}
        if request.external_id is not None:
            canonical["external_id"] = values.external_id(request.external_id, self._limits.external_id_length_max)
        if request.tags is not None:
            canonical["tags"] = _clean_tags(request.tags)
        if request.attributes is not None:
            canonical["attributes"] = _clean_attributes(request.attributes)
        return canonical

    def _check_participant_limits(self, state: ParticipantState) -> None:
        limits = self._limits
        if len(state.tags) > limits.tags_per_participant_max:
            raise ValidationFailed.field("tags", "too_many", f"at most {limits.tags_per_participant_max} tags")
        if len(state.attributes) > limits.attributes_per_participant_max:
            raise ValidationFailed.field(
                "attributes", "too_many", f"at most {limits.attributes_per_participant_max} attributes"
            )
        if len(state.counters) > limits.counters_per_participant_max:
            raise ValidationFailed.field(
                "counters", "too_many", f"at most {limits.counters_per_participant_max} counters"
            )

    async def _mutate_participant(
        self, participant_id: str, change: Callable[[ParticipantState], object], record_ops: RecordOps | None = None
    ) -> Participant:
        """Apply ``change`` to a working copy, check limits, commit, and return the participant once durable.

        ``record_ops(participant)``: more ops for the change's own record, given the answer (partitioned mode: the
        log offset and the answer kept under it, written atomically with the change)."""
        state = self._require(participant_id)
        now = self._clock()
        tx = LedgerTx(self._world, now=now, id_seed=new_id(), program_id=None)
        working = tx.edit(state)
        before = _StateSnapshot.of(working)
        change(working)
        working.invalidate()
        self._check_participant_limits(working)
        before.note_changes(tx, working)
        changes = tx.commit(now)
        answer = working.public(self._world.assets, now)
        ticket = self._publish(changes, [] if record_ops is None else record_ops(answer))
        await self._writer.wait_durable(ticket)
        return answer

    async def update_participant(
        self, participant_id: str, request: ParticipantUpdate, record_ops: RecordOps | None = None
    ) -> Participant:
        """Profile fields (``""`` clears), attributes merged, tags replaced, external_id changed if free."""
        request = validated(request)
        request = msgspec.structs.replace(request, **self._canonical_profile(request))
        if request.external_id is not None:
            owner = self._participant_by_external(request.external_id)
            if owner is not None and owner.id != participant_id:
                raise Conflict(f"external_id {request.external_id!r} belongs to another participant")

        def change(state: ParticipantState) -> None:
            if request.external_id is not None:
                state.external_id = request.external_id
            _apply_profile(state, request)
            if request.tags is not None:
                state.tags = set(request.tags)
            if request.attributes is not None:
                state.attributes.update(request.attributes)

        old = self._require(participant_id)
        old_external = old.external_id
        result = await self._mutate_participant(participant_id, change, record_ops)
        renamed = request.external_id is not None and request.external_id != old_external
        if renamed and self._external_ids.get(old_external) == participant_id:  # unless the old id has a new owner
            del self._external_ids[old_external]
        return result

    async def set_participant_status(
        self, participant_id: str, status: str, record_ops: RecordOps | None = None
    ) -> Participant:
        """ACTIVE, SUSPENDED or CLOSED. SUSPENDED and CLOSED block CREDIT, DEBIT and COUNTER."""
        if status not in ("ACTIVE", "SUSPENDED", "CLOSED"):
            raise ValidationFailed.field("status", "invalid", "status is ACTIVE, SUSPENDED or CLOSED")
        return await self._mutate_participant(participant_id, lambda s: setattr(s, "status", status), record_ops)

    async def add_tags(self, participant_id: str, tags: list[str], record_ops: RecordOps | None = None) -> Participant:
        """Add tags (lowercased); existing ones are kept."""
        clean = _clean_tags(tags)
        return await self._mutate_participant(participant_id, lambda s: s.tags.update(clean), record_ops)

    async def remove_tag(self, participant_id: str, tag: str, record_ops: RecordOps | None = None) -> Participant:
        """Remove a tag; absent is fine."""
        clean = values.tag(tag, "tag")
        return await self._mutate_participant(participant_id, lambda s: s.tags.discard(clean), record_ops)

    async def replace_tags(
        self, participant_id: str, tags: list[str], record_ops: RecordOps | None = None
    ) -> Participant:
        """Replace all tags."""
        clean = _clean_tags(tags)
        return await self._mutate_participant(participant_id, lambda s: setattr(s, "tags", set(clean)), record_ops)

    async def set_counter(
        self,
        participant_id: str,
        key: str,
        value: str,
        reset_after: str | None = None,
        record_ops: RecordOps | None = None,
    ) -> Participant:
        """Set a counter to an exact decimal value (creating it). ``reset_after``: a duration gives it a reset
        window starting now, ``""`` removes its window, None leaves the window as it is."""
        key = values.key(key)
        amount = values.counter_value(parse_decimal(value, "value"))
        window_length = None
        if reset_after:
            try:
                window_length = parse_duration(reset_after)
            except ValueError as error:
                raise ValidationFailed.field("reset_after", "invalid", str(error)) from None
        now = self._clock()

        def change(state: ParticipantState) -> None:
            state.counters[key] = amount
            if window_length is not None:
                state.counter_windows[key] = window_from(window_length, now)
            elif reset_after == "":
                state.counter_windows.pop(key, None)
            elif key in state.counter_windows:  # the set value starts in the window the wall clock is in
                state.counter_windows[key] = state.counter_windows[key].current(now)

        return await self._mutate_participant(participant_id, change, record_ops)

    async def delete_counter(self, participant_id: str, key: str, record_ops: RecordOps | None = None) -> Participant:
        """Delete a counter and its reset window; absent is fine."""
        key = values.key(key)

        def change(state: ParticipantState) -> None:
            state.counters.pop(key, None)
            state.counter_windows.pop(key, None)

        return await self._mutate_participant(participant_id, change, record_ops)

    async def set_attributes(
        self, participant_id: str, attributes: dict[str, str], record_ops: RecordOps | None = None
    ) -> Participant:
        """Merge attributes (string to string)."""
        clean = _clean_attributes(attributes)
        return await self._mutate_participant(participant_id, lambda s: s.attributes.update(clean), record_ops)

    async def delete_attribute(self, participant_id: str, key: str, record_ops: RecordOps | None = None) -> Participant:
        """Delete an attribute; absent is fine."""
        key = values.key(key)
        return await self._mutate_participant(participant_id, lambda s: s.attributes.pop(key, None), record_ops)


def _apply_profile(state: ParticipantState, request: ParticipantCreate | ParticipantUpdate) -> None:
    """Copy the profile fields the request gives onto ``state``; an empty string clears one."""
    for name in _PROFILE_FIELDS:
        value = getattr(request, name)
        if value is None:
            continue
        if value == "":
            state.profile.pop(name, None)
        else:
            state.profile[name] = value


def _clean_tags(tags: list[str]) -> list[str]:
    return [values.tag(tag) for tag in tags]


def _clean_attributes(attributes: dict[str, str]) -> dict[str, str]:
    if not isinstance(attributes, dict):
        raise ValidationFailed.field("attributes", "invalid", "attributes are an object of strings")
    return {
        values.key(key, f"attributes.{key}"): values.attribute_value(value, f"attributes.{key}")
        for key, value in attributes.items()
    }


class _StateSnapshot(msgspec.Struct, frozen=True):
    """A participant's tags, counters and attributes before an operator's change, to record what it changed."""

    tags: frozenset[str]
    counters: dict[str, Decimal]
    attributes: dict[str, str]

    @classmethod
    def of(cls, state: ParticipantState) -> _StateSnapshot:
        return cls(frozenset(state.tags), dict(state.counters), dict(state.attributes))

    def note_changes(self, tx: LedgerTx, state: ParticipantState) -> None:
        """Note every difference between this snapshot and ``state`` in ``tx``'s state history, as the API's."""

        def note(
            state_type: str, key: str, operation: str, old: str | Decimal | None, new: str | Decimal | None
        ) -> None:
            tx.note_state(state.id, state_type, key, operation, old, new, source="api")

        for tag in sorted(state.tags - self.tags):
            note("tag", tag, "add", None, tag)
        for tag in sorted(self.tags - state.tags):
            note("tag", tag, "remove", tag, None)
        for key, value in state.counters.items():
            old = self.counters.get(key)
            if old is None or old != value:
                note("counter", key, "set", old, value)
        for key, old in self.counters.items():
            if key not in state.counters:
                note("counter", key, "delete", old, None)
        for key, text in state.attributes.items():
            if self.attributes.get(key) != text:
                note("attribute", key, "set", self.attributes.get(key), text)
        for key, old_text in self.attributes.items():
            if key not in state.attributes:
                note("attribute", key, "delete", old_text, None)
