"""The publish sink: the one way from memory to the writer.

Every change of state — an event's step, a sweep, an operator's edit of a participant, a wallet operation —
reaches the store through :meth:`Publisher.publish`, which turns the committed
:class:`~scrip_actor.ledger.Changes` into store ops (scrip_actor._records), appends them to the writer as one
record, and swaps the new participant states into the cache with the record's ticket (so none can be passivated
before it is durable). An event's outcome is one more part of the same record (:meth:`publish_outcome`), so the
event's effects and its outcome reach the disk together or not at all.

Nothing here calls back up: the durability callback a caller passes runs when the writer has committed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from scrip_actor import _event_records, _records
from scrip_actor.engine._budgets import budget_ops
from scrip_actor.engine._lot_schedule import LotSchedule
from scrip_actor.engine._participant_cache import ParticipantCache
from scrip_actor.engine._rule_set_registry import RuleSetRegistry
from scrip_actor.engine._step import StepResult
from scrip_actor.ledger import Changes, FollowUp, ParticipantState, RemoteCredit, World
from scrip_actor.model import Event, JournalEntry
from scrip_actor.rules import CompiledRule
from scrip_actor.store import PROCESSED_BELOW_KEY, Op, Writer, be64, events_by_rule_key
from scrip_actor.webhooks._outbox import Outbox

__all__ = ["Publisher"]

# The changes of a step that changed nothing but the event's outcome.
_NO_CHANGES = Changes(participants=[], lots=[], entries=[], accounts={}, schedule=[])


class Publisher:
    """Turns committed changes into one writer record each (see the module docstring)."""

    def __init__(
        self,
        writer: Writer,
        world: World,
        cache: ParticipantCache,
        schedule: LotSchedule,
        rule_sets: RuleSetRegistry,
        outbox: Outbox,
    ) -> None:
        self._writer = writer
        self._world = world
        self._cache = cache
        self._schedule = schedule
        self._rule_sets = rule_sets
        self._outbox = outbox  # webhook events of each record, in that record (scrip_actor/webhooks/_outbox.py)
        # Observation hook (metrics): entries committed to memory. Cheap, and it must not raise.
        self.on_entries: Callable[[list[JournalEntry]], None] | None = None
        # A step's SCHEDULE_EVENT / BROADCAST follow-ups as the automations' ops (engine/_automations.py).
        self.follow_up_ops: Callable[[Event, list[FollowUp]], list[Op]] | None = None
        # Partitioned mode: a step's CREDITs to other partitions' participants as outbox ops (the partition's
        # applier, scrip_actor/partitioned/_apply.py), and what to call once they are durable (wake its relay).
        self.remote_credit_ops: Callable[[Event, list[RemoteCredit]], tuple[list[Op], Callable[[], None]]] | None = None
        # THRESHOLD subscriptions armed by the counters a record changed (engine/_subscriptions.py): called with
        # the programs to look in, the time (None: now) and the changed participants.
        self.counter_ops: Callable[[Iterable[str], datetime | None, list[ParticipantState]], list[Op]] | None = None

    def publish(
        self,
        changes: Changes,
        extra_ops: list[Op],
        on_durable: Callable[[], None] | None = None,
        outcome: tuple[Event, bool] | None = None,
    ) -> int:
        """Append one record with ``changes`` and ``extra_ops``; swap the new states into the cache. Synchronous.

        With webhook endpoints subscribed, the record also carries the webhook events of the changes and then of
        the event's ``outcome`` (event, failed), in that order (scrip_actor/webhooks/_outbox.py).

        Returns the record's ticket (for :meth:`Writer.wait_durable`).
        """
        outbox = None
        if self._outbox.subscribed:  # before changes_ops: a new participant is still new
            outbox = self._outbox.change_ops(changes)
            if outcome is not None:
                outbox.extend(self._outbox.outcome_ops(*outcome))
        ops = _records.changes_ops(changes, (self._world.journal_sequence, self._world.journal_hash))
        ops.extend(extra_ops)
        if outbox:
            ops.extend(outbox)
        if changes.entries and self.on_entries is not None:
            self.on_entries(changes.entries)
        ticket = self._writer.append(ops, on_durable)
        cache = self._cache
        for state in changes.participants:
            state.commit_ticket = ticket
            cache.put(state)
        for due, lot_id, participant_id in changes.schedule:
            self._schedule.add(due, lot_id, participant_id)
        return ticket

    async def write(self, ops: list[Op]) -> None:
        """Append one record of plain ``ops`` (no changes) and wait until it is durable."""
        await self._writer.wait_durable(self._writer.append(ops))

    def publish_edit(self, changes: Changes, extra_ops: list[Op]) -> int:
        """:meth:`publish` for an operator's edit of participants (the API's counters, tags, ...): a counter set by
        the API arms the THRESHOLD subscriptions it reaches in the same record, in every program of the
        participant, as an event's counter would."""
        if changes.participants and self.counter_ops is not None:
            programs = dict.fromkeys(program for state in changes.participants for program in state.program_ids)
            extra_ops = [*extra_ops, *self.counter_ops(programs, None, changes.participants)]
        return self.publish(changes, extra_ops)

    def publish_outcome(
        self,
        event: Event,
        position: int,
        result: StepResult,
        rules: list[CompiledRule],
        on_durable: Callable[[], None],
        processed_below: int | None,
    ) -> int:
        """Publish a step's changes with the event's outcome (``event`` carries it, status still PROCESSING).

        A first attempt (``position`` is its sequence) may move the store's processed-below mark
        (:meth:`Admission.processed_below`); a retry removes its inbox record.
        """
        failed = result.failure is not None
        changes = result.changes or _NO_CHANGES
        sequence_key = be64(event.sequence)
        rule_set, new_rule_set = self._rule_sets.number_of(rules) if result.evaluations else (0, None)
        entries = [entry.sequence for entry in changes.entries if entry.event_id]
        coded = (result.codes, result.reasons) if result.evaluations else None
        outcome = _event_records.encode_outcome(event, rule_set, entries, "FAILED" if failed else "COMPLETED", coded)
        ops: list[Op] = [("event_outcomes", sequence_key, outcome)]
        if position != event.sequence:
            ops.append(("inbox_pending", be64(position), None))
        if processed_below is not None:
            ops.append(("meta", PROCESSED_BELOW_KEY, be64(processed_below)))
        if new_rule_set is not None:
            ops.append(new_rule_set)
        ops.extend(  # the list filter's index (see Queries.list_events)
            ("events_by_rule", events_by_rule_key(rule_id, event.sequence), b"") for rule_id in result.matched_rule_ids
        )
        if failed:
            ops.append(("events_failed", sequence_key, b""))
        if result.budget_states:  # what the rules' budgets consumed, in the record of the entries that consumed it
            ops.extend(budget_ops(result.budget_states))
        if result.follow_ups and not failed and self.follow_up_ops is not None:  # with the outcome, or not at all
            ops.extend(self.follow_up_ops(event, result.follow_ups))
        if changes.participants and self.counter_ops is not None:
            ops.extend(self.counter_ops((event.program_id,), event.processed_at, changes.participants))
        if result.remote_credits and not failed:  # sent with the entries that put their value in transit
            assert self.remote_credit_ops is not None, "only partitioned mode resolves a target to another partition"
            remote_ops, sent = self.remote_credit_ops(event, result.remote_credits)
            ops.extend(remote_ops)
            on_durable = _both(on_durable, sent)
        # One record: settlement, enrolment, the rules' effects and the outcome commit together or not at all.
        return self.publish(changes, ops, on_durable, (event, failed))


def _both(first: Callable[[], None], second: Callable[[], None]) -> Callable[[], None]:
    def both() -> None:
        first()
        second()

    return both
