"""The participants in memory: each actor's state, loaded on first use, kept equal to what is committed or queued.

An actor is virtual (scrip_actor.actors): its mailbox exists while it has work, and its state lives here, in an
LRU of at most ``engine.actors_resident_max`` entries. A state leaves (is *passivated*) only when it is idle and
everything it changed is durable (its ``commit_ticket`` is at or below the writer's durable mark), so the store
can always give it back exactly; a busy or not-yet-durable state stays, and is looked at again after a commit.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Callable

from scrip_actor import _records
from scrip_actor.ledger import ParticipantState
from scrip_actor.store import Store, Writer, external_id_key

__all__ = ["ParticipantCache"]

# How many states beyond the excess one passivation pass looks at (busy ones are skipped): a bound per call.
_PASSIVATION_LOOKAHEAD = 64


class ParticipantCache:
    """The resident participant states, by id, with an index by external id.

    Args:
        store: where a state not in memory is loaded from.
        writer: whose durable mark says which states may leave.
        resident_max: ``engine.actors_resident_max``.
        is_busy: whether an actor (by external id) has queued work; such a state never leaves.
    """

    def __init__(self, store: Store, writer: Writer, resident_max: int, is_busy: Callable[[str], bool]) -> None:
        assert resident_max >= 1
        self._store = store
        self._writer = writer
        self._resident_max = resident_max
        self._is_busy = is_busy
        self.states: OrderedDict[str, ParticipantState] = OrderedDict()
        self.external_ids: dict[str, str] = {}  # external id -> participant id, for the resident states
        self.peak = 0
        self.passivations = 0

    def get(self, participant_id: str) -> ParticipantState | None:
        """The state of a participant, loaded (and checked) from the store if not resident; None if unknown."""
        state = self.states.get(participant_id)
        if state is not None:
            self.states.move_to_end(participant_id)
            return state
        state = _records.load_participant(self._store, participant_id)
        if state is not None:
            self.put(state)
        return state

    def by_external(self, external_id: str) -> ParticipantState | None:
        """The participant holding this (canonical) external id now, or None."""
        participant_id = self.external_ids.get(external_id)
        if participant_id is None:
            raw = self._store.get_raw("participant_ext", external_id_key(external_id))
            if raw is None:
                return None
            participant_id = raw.decode()
        state = self.get(participant_id)
        if state is None or state.external_id != external_id:
            return None  # the index on disk lags a rename that is not durable yet: the old id is free already
        return state

    # The step's Lookups (scrip_actor.engine._step): how it finds a rule's target participants.
    participant = get
    participant_by_external = by_external

    def put(self, state: ParticipantState) -> None:
        """Make ``state`` the resident state of its participant (newest in the LRU)."""
        states = self.states
        previous = states.get(state.id)
        if previous is not None and previous.external_id != state.external_id:
            self.external_ids.pop(previous.external_id, None)
        states[state.id] = state
        states.move_to_end(state.id)
        self.external_ids[state.external_id] = state.id
        if len(states) > self.peak:
            self.peak = len(states)
        if len(states) > self._resident_max:
            self.passivate()

    def passivate(self) -> None:
        """Drop idle, fully durable states beyond the cap, oldest first (a bounded look per call)."""
        excess = len(self.states) - self._resident_max
        if excess <= 0:
            return
        durable = self._writer.durable
        for participant_id in list(itertools.islice(self.states, excess + _PASSIVATION_LOOKAHEAD)):
            if excess <= 0:
                return
            state = self.states[participant_id]
            if state.commit_ticket > durable or self._is_busy(state.external_id):
                continue
            del self.states[participant_id]
            self.external_ids.pop(state.external_id, None)
            self.passivations += 1
            excess -= 1

    def reset_peak(self) -> None:
        """Start a new window for :attr:`peak`."""
        self.peak = len(self.states)
