"""Admission: the stage an event passes first, synchronously, before it is acknowledged.

It validates the request against the limits (sizes, depth, timestamp, the program, the participant it names),
hashes its payload canonically (JSON key order, whitespace and ``105`` vs ``105.0`` do not matter), looks the
idempotency key up (pending in memory, then LMDB), refuses new work beyond the in-flight bounds (HTTP 429), and
for a new event assigns the next inbox sequence, appends its record to the writer and delivers it to its
participant's mailbox with the rules in force now. It owns the in-flight counters, which the step releases.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable
from datetime import datetime
from hashlib import sha256
from typing import Any

import msgspec

from scrip_actor import _event_records, values
from scrip_actor.config import EngineSettings, Limits
from scrip_actor.durations import utc
from scrip_actor.engine._catalog import Catalog
from scrip_actor.engine._messages import Process
from scrip_actor.engine._participant_cache import ParticipantCache
from scrip_actor.errors import IdempotencyConflict, NotFound, Overloaded, ValidationFailed
from scrip_actor.ids import KIND_EVENT, SequenceIds
from scrip_actor.model import Event, EventSubmit
from scrip_actor.report_totals import ReportTotals
from scrip_actor.rules import cel_event_data
from scrip_actor.store import (
    PROCESSED_BELOW_KEY,
    Op,
    Store,
    Writer,
    be64,
    events_by_external_key,
    idempotency_key,
    unbe64,
)

__all__ = ["Admission", "pending_positions"]

_hash_encoder = msgspec.json.Encoder(order="sorted")
_data_encoder = msgspec.json.Encoder()
# The canonical payload's buffer starts this big; it keeps the size of the largest one hashed, which validation
# bounds (limits.event_data_bytes_max, and a few bytes more per number: CEL's 105.0 for a JSON 105).
_CANONICAL_BUFFER_BYTES = 1024
# How far the processed-below mark moves before it is written again (a lagging mark only lengthens the open's scan).
_MARK_STEP_EVENTS = 256


class Admission:
    """Admits events (see the module docstring).

    Args:
        store: where idempotency keys of durable events are looked up.
        writer: where an admitted event's record is appended.
        ids: the store's id codec (an event's id carries its sequence).
        clock: the wall clock (an event's receipt time).
        limits: ``config.limits``; settings: ``config.engine`` (the in-flight bounds).
        catalog: the programs, and the compiled rules an admitted event is delivered with.
        cache: the participants, for an event that names one by id.
        events_live: the events accepted and not yet finished, by id (admission adds them).
        event_by_sequence: an event by sequence (a replay's original).
        deliver: puts a message in an actor's mailbox, by external id.
    """

    def __init__(
        self,
        *,
        store: Store,
        writer: Writer,
        ids: SequenceIds,
        clock: Callable[[], datetime],
        limits: Limits,
        settings: EngineSettings,
        catalog: Catalog,
        cache: ParticipantCache,
        events_live: dict[str, Event],
        event_by_sequence: Callable[[int], Event | None],
        deliver: Callable[[str, Any], None],
        reports: ReportTotals,
    ) -> None:
        self._store = store
        self._reports = reports
        self._writer = writer
        self._ids = ids
        self._clock = clock
        self._limits = limits
        self._settings = settings
        self._catalog = catalog
        self._cache = cache
        self._events_live = events_live
        self._event_by_sequence = event_by_sequence
        self._deliver = deliver
        self._idempotency_pending: dict[bytes, Event] = {}
        # Their keys, oldest first: the writer makes records durable in the order they were appended, so one bound
        # method forgets the oldest, instead of a closure (and its cells) made per event for its own key.
        self._idempotency_keys_pending: deque[bytes] = deque()
        self._forget_oldest_pending = self._forget_oldest_pending_key
        self._canonical_buffer = bytearray(_CANONICAL_BUFFER_BYTES)  # see check_event
        self.inbox_sequence = 0  # the last sequence or inbox position given out (a retry takes a new position)
        self.inflight = 0
        self.inflight_peak = 0
        self.inflight_bytes = 0  # event_data bytes of the events counted in inflight
        self.counts = {"accepted": 0, "replays": 0, "conflicts": 0, "overloaded": 0}
        self.closing = False
        self.on_event_accepted: Callable[[Event], None] | None = None  # observation hook: a new event was admitted
        # First attempts in flight, as a heap of sequences, and those finished out of order: the lowest still in
        # flight is the store's processed-below mark (see processed_below).
        self._first_attempts: list[int] = []
        self._finished_early: set[int] = set()
        self.processed_below_written = 0  # the mark last put in a record (0: none yet)

    def check_event(self, request: EventSubmit) -> tuple[str, str | None, datetime | None, str, Any, bytes]:
        """Validate an event; returns (external id it routes to, participant id it names, timestamp, payload hash,
        CEL data, event_data as JSON: encoded here once, stored as it is)."""
        limits = self._limits
        if (request.external_id is None) == (request.participant_id is None):
            raise ValidationFailed.field("external_id", "required", "give exactly one of external_id or participant_id")
        if request.participant_id is not None:
            if not isinstance(request.participant_id, str) or not request.participant_id:
                raise ValidationFailed.field("participant_id", "invalid", "participant_id must be a non-empty id")
            known = self._cache.get(request.participant_id)
            if known is None:
                raise NotFound("participant", str(request.participant_id))
            external_id, named_id = known.external_id, known.id
        else:
            external_id, named_id = values.external_id(request.external_id, limits.external_id_length_max), None
        if not 1 <= len(request.idempotency_key) <= limits.idempotency_key_length_max:
            raise ValidationFailed.field(
                "idempotency_key",
                "invalid",
                f"idempotency_key must be 1-{limits.idempotency_key_length_max} characters",
            )
        cel_data, data_json = self.event_data_checked(request.event_data, "event_data")
        timestamp = None
        if request.event_timestamp is not None:
            try:
                timestamp = utc(request.event_timestamp)
            except (ValueError, OverflowError) as error:
                raise ValidationFailed.field("event_timestamp", "invalid", str(error)) from None
        self._catalog.program(request.program_id)
        # The canonical payload is only ever hashed, so it is encoded into a reused buffer: no bytes object, and
        # no growing of a fresh one, per event. Its form is the stored hashes' form: it must never change.
        canonical = self._canonical_buffer
        try:
            _hash_encoder.encode_into(
                {
                    "external_id": None if named_id else external_id,  # NFC: both spellings are one participant
                    "participant_id": request.participant_id,
                    "event_timestamp": timestamp.isoformat() if timestamp else None,
                    "event_data": cel_data,
                },
                canonical,
            )
        except TypeError:  # only the embedded API can pass a non-text key (JSON keys are text): sorting refuses it
            raise ValidationFailed.field("event_data", "invalid", "event_data keys must be strings") from None
        return external_id, named_id, timestamp, sha256(canonical).hexdigest(), cel_data, data_json

    def event_data_for_cel(self, event_data: Any, field: str = "event_data") -> Any:
        """Check event data against the limits (a JSON object, size, depth) and return it as CEL sees it.

        Raises:
            ValidationFailed: not an object, not JSON, too large, or nested too deeply.
        """
        return self.event_data_checked(event_data, field)[0]

    def event_data_checked(self, event_data: Any, field: str) -> tuple[Any, bytes]:
        """:meth:`event_data_for_cel`, and the data as JSON."""
        limits = self._limits
        if not isinstance(event_data, dict):
            raise ValidationFailed.field(field, "invalid", f"{field} must be a JSON object")
        # The CEL view of an object with only scalar values (most events) is made here, in one pass and without
        # the depth walk (a flat object has depth 1): the same result as cel_event_data, ints become doubles.
        # Measured: the depth walk and the recursive conversion were 25 % of admission. The view starts as a
        # copy (one C call, sized once), so only the ints are written again.
        converted: dict[str, Any] = dict(event_data)
        flat: dict[str, Any] | None = converted
        try:
            for key, item in event_data.items():
                kind = type(item)
                if kind is int:
                    converted[key] = float(item)
                elif not (kind is str or kind is float or kind is bool or item is None):
                    flat = None  # nested: checked for depth and converted below
                    break
        except OverflowError:
            raise ValidationFailed.field(field, "invalid", _beyond_double(field)) from None
        if flat is None and _depth_exceeds(event_data, limits.event_data_depth_max):  # first, without recursion
            raise ValidationFailed.field(field, "too_deep", f"{field} nests deeper than {limits.event_data_depth_max}")
        try:
            data_bytes = _data_encoder.encode(event_data)
        except (TypeError, OverflowError) as error:
            raise ValidationFailed.field(field, "invalid", f"{field} is not JSON: {error}") from None
        if len(data_bytes) > limits.event_data_bytes_max:
            raise ValidationFailed.field(
                field, "too_large", f"{field} is {len(data_bytes)} bytes; the limit is {limits.event_data_bytes_max}"
            )
        if flat is not None:
            return flat, data_bytes
        try:
            return cel_event_data(event_data), data_bytes
        except OverflowError:
            raise ValidationFailed.field(field, "invalid", _beyond_double(field)) from None

    def accept(
        self, request: EventSubmit, event_type: str = "EXTERNAL", extra_ops: list[Op] | None = None
    ) -> tuple[Event, bool]:
        """Admit one event synchronously: (event, is_new). Raises ScripError for bad input or overload.

        ``event_type`` SYSTEM marks an automation's event (engine/_automation_runs.py); it is stored with it.
        ``extra_ops`` join a new event's record (partitioned mode: the consumed log offset, so the offset and the
        event are durable together or not at all); a replay or a refusal writes nothing, so they are not written.
        """
        external_id, named_id, timestamp, payload_hash, cel_data, data_json = self.check_event(request)
        data_bytes = len(data_json)
        idem_key = idempotency_key(request.program_id, request.idempotency_key)
        existing = self._idempotency_pending.get(idem_key)
        if existing is None:
            raw = self._store.get_raw("idempotency", idem_key)
            if raw is not None:
                existing = self._event_by_sequence(unbe64(raw))
                assert existing is not None
                assert existing.idempotency_key == request.idempotency_key
        if existing is not None:
            if existing.payload_hash != payload_hash:
                self.counts["conflicts"] += 1
                raise IdempotencyConflict(
                    f"idempotency_key {request.idempotency_key!r} was used with a different payload",
                    {"event_id": existing.id},
                )
            self.counts["replays"] += 1
            return existing, False
        if self.closing:
            raise Overloaded("the engine is shutting down")
        self.check_inflight(data_bytes)
        now = self._clock()
        sequence = self.inbox_sequence = self.inbox_sequence + 1
        event = Event(
            id=self._ids.make(KIND_EVENT, sequence),
            sequence=sequence,
            program_id=request.program_id,
            external_id=external_id,
            idempotency_key=request.idempotency_key,
            event_timestamp=timestamp or now,
            event_data=request.event_data,
            created_at=now,
            payload_hash=payload_hash,
            # An event that names its participant by id is bound to it now: renaming the participant while the
            # event waits must not send it (or its points) to whoever holds the old external_id by then.
            participant_id=named_id,
            event_type=event_type,  # type: ignore[arg-type]
        )
        ops = self._record_ops(event, data_json, idem_key, extra_ops)
        self._idempotency_pending[idem_key] = event
        self._events_live[event.id] = event
        heapq.heappush(self._first_attempts, sequence)
        self._idempotency_keys_pending.append(idem_key)
        self._writer.append(ops, self._forget_oldest_pending)
        inflight = self.inflight = self.inflight + 1
        self.inflight_bytes += data_bytes
        if inflight > self.inflight_peak:
            self.inflight_peak = inflight
        self.counts["accepted"] += 1
        if self.on_event_accepted is not None:
            self.on_event_accepted(event)
        # Processing may start before the inbox record is durable: the writer commits in order, so the outcome
        # can never reach the disk before the event it belongs to.
        rules = self._catalog.compiled.get(request.program_id, [])
        self._deliver(external_id, Process(event, cel_data, sequence, rules, data_bytes))
        return event, True

    def _record_ops(self, event: Event, data_json: bytes, idem_key: bytes, extra_ops: list[Op] | None) -> list[Op]:
        """A new event's admission record: the event, its idempotency key, its indexes, then ``extra_ops``."""
        sequence_key = be64(event.sequence)
        ops: list[Op] = [
            ("events", sequence_key, _event_records.encode_event(event, data_json)),
            ("idempotency", idem_key, sequence_key),
            ("events_by_external", events_by_external_key(event.external_id, event.sequence), b""),
        ]
        self._reports.record_event(event.program_id, event.event_timestamp, sequence_key, ops)  # schema 9
        if extra_ops:
            ops.extend(extra_ops)
        return ops

    def _forget_oldest_pending_key(self) -> None:
        """The oldest admitted event's record is durable: its idempotency key is found in the store from now on."""
        # No default: a key missing here would mean the pairing with the writer's order broke.
        self._idempotency_pending.pop(self._idempotency_keys_pending.popleft())

    def check_inflight(self, data_bytes: int) -> None:
        """Refuse new work (Overloaded, HTTP 429) beyond the in-flight bounds: events, and their bytes."""
        settings = self._settings
        if self.inflight >= settings.inflight_events_max:
            self.counts["overloaded"] += 1
            raise Overloaded(f"{self.inflight} events are waiting to be processed; retry shortly")
        # One event alone may always enter an empty queue, so an event under the size limit is never refused forever.
        if self.inflight and self.inflight_bytes + data_bytes > settings.inflight_event_bytes_max:
            self.counts["overloaded"] += 1
            raise Overloaded(f"{self.inflight_bytes} bytes of events are waiting to be processed; retry shortly")

    def release(self, data_bytes: int) -> None:
        """An event left the pipeline (its step ran): it no longer counts against the in-flight bounds."""
        self.inflight -= 1
        self.inflight_bytes -= data_bytes
        assert self.inflight >= 0
        assert self.inflight_bytes >= 0

    def processed_below(self, finished_sequence: int) -> int | None:
        """A first attempt finished (its outcome is in the record being built): the new processed-below mark to
        put in that record, or None when it moved too little to be worth a put.

        The mark is a sequence below which every event's first attempt has an outcome in the store, so an open
        finds the events still to process by scanning from it instead of reading an inbox marker that each event
        would put at admission and delete with its outcome (two store operations per event). A retried event
        keeps its inbox record (it needs its new position). A mark that lags is always safe — the open only scans
        a little further — so it is written when it has moved by ``_MARK_STEP_EVENTS`` or caught up completely.
        """
        heap = self._first_attempts
        if heap and heap[0] == finished_sequence:
            heapq.heappop(heap)
            while heap and heap[0] in self._finished_early:
                self._finished_early.remove(heapq.heappop(heap))
        else:
            self._finished_early.add(finished_sequence)
        mark = heap[0] if heap else self.inbox_sequence + 1
        assert mark >= self.processed_below_written, "the processed-below mark never moves back"
        if mark == self.processed_below_written or (heap and mark - self.processed_below_written < _MARK_STEP_EVENTS):
            return None
        self.processed_below_written = mark
        return mark

    def redeliver(self, event: Event, position: int, rules: list[Any]) -> None:
        """Deliver an event found pending at open (counted in flight again, not admitted again)."""
        data_bytes = len(msgspec.json.encode(event.event_data))
        if position == event.sequence:  # a first attempt: the mark stays below it until it is processed
            heapq.heappush(self._first_attempts, event.sequence)
        self._events_live[event.id] = event
        self.inflight += 1
        self.inflight_bytes += data_bytes
        self._deliver(event.external_id, Process(event, cel_event_data(event.event_data), position, rules, data_bytes))

    def readmit(self, event: Event) -> tuple[Event, int]:
        """Queue a FAILED event again at a new inbox position; returns (its snapshot, the record's ticket).

        Raises:
            Overloaded: shutting down, or the in-flight bounds are reached.
        """
        if self.closing:
            raise Overloaded("the engine is shutting down")
        data_bytes = len(msgspec.json.encode(event.event_data))
        self.check_inflight(data_bytes)
        retried = msgspec.structs.replace(
            event, status="PENDING", error_message=None, rule_evaluations=[], journal_entry_ids=[], processed_at=None
        )
        # A new inbox position, so that after a restart it is replayed behind what was queued before the retry.
        self.inbox_sequence += 1
        position = self.inbox_sequence
        self._events_live[retried.id] = retried
        self.inflight += 1
        self.inflight_bytes += data_bytes
        ticket = self._writer.append(
            [
                ("event_outcomes", be64(retried.sequence), _event_records.encode_outcome(retried, 0, [])),
                ("inbox_pending", be64(position), be64(retried.sequence)),
                ("events_failed", be64(retried.sequence), None),
            ]
        )
        snapshot = msgspec.structs.replace(retried)
        rules = self._catalog.compiled.get(retried.program_id, [])  # the retry is admitted anew: today's rules apply
        self._deliver(
            retried.external_id, Process(retried, cel_event_data(retried.event_data), position, rules, data_bytes)
        )
        return snapshot, ticket


def _beyond_double(field: str) -> str:
    return f"a number in {field} is beyond the range of a double (CEL reads JSON numbers as doubles)"


def _depth_exceeds(value: Any, depth_max: int) -> bool:
    """Whether JSON-like ``value`` nests deeper than ``depth_max`` (iterative: hostile depth cannot blow the stack)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > depth_max:
            return True
        if isinstance(item, dict):
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
    return False


def pending_positions(store: Store) -> tuple[int, list[tuple[int, int]]]:
    """The stored processed-below mark (0: none) and ``(inbox position, sequence)`` of every event still to
    process, in position order (at open).

    First attempts have no inbox record: they are the events at or above the mark without an outcome. Retries
    have one (their new position). A first-attempt record of an older schema-5 store (an empty value) is read as
    such; one whose event has an outcome is stale and skipped.
    """
    raw_mark = store.get_raw("meta", PROCESSED_BELOW_KEY)
    mark = unbe64(raw_mark) if raw_mark is not None else 0
    pending: dict[int, int] = {}  # sequence -> position
    for key, _ in store.scan("events", start=be64(mark - 1) if mark > 1 else None):
        if store.get_raw("event_outcomes", key) is None:
            pending[unbe64(key)] = unbe64(key)
    for key, value in store.scan("inbox_pending"):
        sequence = unbe64(value) if value else unbe64(key)
        if value or store.get_raw("event_outcomes", be64(sequence)) is None:  # a retry, or a legacy first attempt
            pending[sequence] = unbe64(key)
    return mark, sorted((position, sequence) for sequence, position in pending.items())
