"""Idempotency keys across partitions, wired into the engine role: a key reused by another participant is a 409.

Every ``(program_id, idempotency_key)`` has a **key partition**, ``claim_partition_for`` (the same murmur2 rule as
participants, over ``program_id NUL key``). The key partition's :class:`~scrip_actor.partitioned._claims.ClaimStore`
records who used the key first (the event's canonical payload hash, which covers the participant). For an event
record on its participant's partition *p* with key partition *c*:

* **c == p** (1 in N events): judged at once against the claim store and admitted with its claim in the same LMDB
  record — or refused with ``idempotency_conflict`` (409) if the key was claimed for another payload. Two events of
  this partition with one key meet in the embedded admission's own idempotency check, as on one process.
* **c != p**: the event is **parked** (:mod:`._parking`) with a :class:`~._claims.ClaimRequest` to *c* in the outbox,
  in the record with its offset. *c* claims the key (or finds it claimed) and answers with a
  :class:`~._claims.ClaimAnswer` through its own outbox; when the answer reaches *p*, the event is admitted
  (granted: first use, or the same payload again, which the admission then answers as a replay) or refused with the
  409 (``details.event_id`` names the first use as ``<partition>@<offset>`` of its record).

A participant's later events wait behind its parked one, so order per participant is kept. A refusal is kept under
the event's log position (``log_outcome``), which the front's 202 names. Claims and answers are applied once each
(the outbox's applied markers); a claim is idempotent anyway (the same request always gets the same answer).

The cost: (N-1)/N of events take a round trip through the log (two relay hops) before admission, and two more
small LMDB records (the claim at *c*, the answer at *p*). ``--idempotency-scope participant`` turns this off (a key
is then checked on the participant's partition only, as without claims; docs/partitioned.md).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Awaitable, Callable

import msgspec

from scrip_actor.engine import Engine, Verdict
from scrip_actor.errors import IdempotencyConflict, Overloaded, ScripError
from scrip_actor.model import EventSubmit, TransferCreate
from scrip_actor.partitioned._claims import Claim, ClaimAnswer, ClaimRequest, ClaimStore, claim_op
from scrip_actor.partitioned._operation_records import ParticipantOperation, operation_hash
from scrip_actor.partitioned._outcomes import outcome_op
from scrip_actor.partitioned._parking import Parked, ParkedEvents
from scrip_actor.partitioned._reward_stock import STOCK_ASK_ORDINAL
from scrip_actor.partitioned._routing import partition_for
from scrip_actor.partitioned._wallet_leases import wait_quiet
from scrip_actor.store import Op
from scrip_actor.values import external_id as canonical_external_id

__all__ = ["KeyClaims", "claim_partition_for"]

_event_encoder = msgspec.json.Encoder()
_event_decoder = msgspec.json.Decoder(EventSubmit)
_transfer_decoder = msgspec.json.Decoder(TransferCreate)
_operation_decoder = msgspec.json.Decoder(ParticipantOperation)
# Claims of balance operations' keys (transfers) live apart from events' keys, as on one process.
_OPERATIONS_PREFIX = "operations:"
_EXTERNAL_ID_MAX = 255

# Outbox appends for this record: (offset, [(destination partition, payload struct)], first ordinal) -> ops.
SendOps = Callable[[int, list[tuple[int, msgspec.Struct]], int], list[Op]]
Send = tuple[int, msgspec.Struct]  # (destination partition, payload)
# The ordinal of a record's claim request: apart from the credits a parked transfer sends later from the same
# offset (ordinals 0, 1, ...), which the destination would otherwise take for copies of the request and drop.
CLAIM_ORDINAL = 0xFFFF_FFFF
# Apply a released transfer or credit: (the parked record, the ops its record must carry, the ops of its key's
# claim, written only if it is applied) -> until durable.
ApplyReleased = Callable[[Parked, list[Op], list[Op]], Awaitable[None]]


def claim_partition_for(program_id: str, idempotency_key: str, partitions: int) -> int:
    """The partition that owns a program's idempotency key."""
    return partition_for(f"{program_id}\0{idempotency_key}", partitions)


def _conflict(idempotency_key: str, first_ref: str) -> IdempotencyConflict:
    return IdempotencyConflict(
        f"idempotency_key {idempotency_key!r} was used with a different payload",
        {"event_id": first_ref, "idempotency_key": idempotency_key},
    )


class KeyClaims:
    """The claims this partition owns and the events it parked (see the module docstring)."""

    def __init__(
        self,
        engine: Engine,
        log: str,
        partition: int,
        partitions: int,
        send_ops: SendOps,
        apply_released: ApplyReleased,
    ) -> None:
        store = engine._store
        store.open_side_database("claims")
        store.open_side_database("parked")
        self._engine, self._log, self._partition, self._partitions = engine, log, partition, partitions
        self._send_ops, self._apply_released = send_ops, apply_released
        self._claims = ClaimStore(store.env)
        self.parked = ParkedEvents(store.env, partition)
        # Claims appended to the writer and perhaps not durable yet, so that the records after them in one batch
        # see them (claim effects are applied inline with events); emptied by the applier at each durable point.
        self._recent: dict[tuple[str, str], Claim] = {}
        # Claims judged for a record whose own write is still to come (its admission, its transfer): they join
        # _recent only once that record is appended with them (confirm), never if it is refused or held back.
        self._tentative: dict[int, tuple[tuple[str, str], Claim]] = {}
        # Whether a participant has an event held for a shared wallet (_wallet_leases.py): its transfers and the
        # credits sent to it park behind that event as behind a parked one.
        self.held: Callable[[str], bool] = lambda _external_id: False
        # The return of a reward's units granted to a parked redemption that is refused here (_reward_stock.py).
        self.refund_ops: Callable[[Parked], list[Op]] = lambda _parked: []

    def forget_recent(self) -> None:
        """Everything appended so far is durable: committed state answers from now on."""
        self._recent.clear()
        self._tentative.clear()

    def confirm(self, offset: int) -> None:
        """The record at ``offset`` was appended with the claim judged for it: later records must see it."""
        tentative = self._tentative.pop(offset, None)
        if tentative is not None:
            self._recent[tentative[0]] = tentative[1]

    def drop(self, offset: int) -> None:
        """The record at ``offset`` was refused or held back: the claim judged for it was never written."""
        self._tentative.pop(offset, None)

    def _claim_of(self, program_id: str, idempotency_key: str) -> Claim | None:
        recent = self._recent.get((program_id, idempotency_key))
        if recent is not None:
            return recent
        with self._engine._store.env.begin() as txn:
            return self._claims.lookup(txn, program_id, idempotency_key)

    def _claimed(self, program_id: str, idempotency_key: str, claim: Claim) -> list[Op]:
        self._recent[(program_id, idempotency_key)] = claim
        return claim_op(program_id, idempotency_key, claim)

    # --- events on their participant's partition --------------------------------------------------------------

    def decide(self, offset: int, request: EventSubmit) -> Verdict:
        """Admit, park or refuse an event record (``admit_consumed``'s hook)."""
        try:
            external_id, named_id, _, payload_hash, _, _ = self._engine._admission.check_event(request)
        except ScripError:
            return ("admit", [], None)  # the admission refuses it itself, with the same error
        who = external_id if named_id is None else self._named(named_id)
        key_partition = claim_partition_for(request.program_id, request.idempotency_key, self._partitions)
        if key_partition == self._partition and not self.parked.blocked(who):
            return self._judge_here(request, payload_hash, offset)
        parked = Parked(
            offset=offset, external_id=who, event=_event_encoder.encode(request), claim_partition=key_partition
        )
        ops = [self.parked.park(parked)]
        if key_partition != self._partition:
            claim = self._request(request.program_id, request.idempotency_key, payload_hash, offset)
            ops += self._send_ops(offset, [(key_partition, claim)], CLAIM_ORDINAL)
        return ("consume", ops, None)

    def _named(self, participant_id: str) -> str:
        """The queue of an event that names its participant by id: the participant's external id, as its
        transfers' (an unknown id cannot have transfers, and its event fails on its own)."""
        state = self._engine._cache.get(participant_id)
        return f"id:{participant_id}" if state is None else state.external_id

    def park_behind(self, offset: int, external_id: str, kind: str, body: bytes) -> list[Op] | None:
        """Park a transfer (``body``: its request) behind its source's waiting events, or a credit (``body``: the
        TransitCredit) behind its recipient's; None when that participant has none (apply it now)."""
        if not self.parked.blocked(external_id) and not self.held(external_id):
            return None
        parked = Parked(offset=offset, external_id=external_id, event=body, claim_partition=self._partition, kind=kind)
        return [self.parked.park(parked)]

    def _judge_here(self, request: EventSubmit, payload_hash: str, offset: int) -> Verdict:
        """An event whose key this partition owns: admitted with its claim, or the 409."""
        return self._judge(request.program_id, request.idempotency_key, payload_hash, offset)

    def _judge(self, claim_program: str, idempotency_key: str, payload_hash: str, offset: int) -> Verdict:
        """A key this partition owns: "admit" with the ops of its claim (none for the same payload again: a replay),
        or "refuse" with the 409 and the op that keeps it."""
        existing = self._claim_of(claim_program, idempotency_key)
        if existing is not None and existing.payload_hash != payload_hash.encode():
            error = _conflict(idempotency_key, existing.event_id)
            return ("refuse", [outcome_op(self._log, offset, error)], error)
        if existing is not None:
            return ("admit", [], None)  # the same payload again: the admission (or operation) answers it as a replay
        claim = Claim(
            payload_hash=payload_hash.encode(), event_id=f"{self._partition}@{offset}", claimed_at_ms=_now_ms()
        )
        self._tentative[offset] = ((claim_program, idempotency_key), claim)
        return ("admit", claim_op(claim_program, idempotency_key, claim), None)

    # --- transfers on their source's partition ----------------------------------------------------------------

    def transfer_verdict(self, offset: int, source_external_id: str, request: TransferCreate) -> Verdict:
        """Apply a transfer now ("admit", with its claim's ops), park it ("consume": behind its source's parked
        events, or until its key's partition answers), or refuse it (its key was used for another transfer).

        A transfer's idempotency key is claimed like an event's, in the operations' own namespace (as on one
        process, where events and balance operations keep their keys apart)."""
        waits_for = [name for name in self._local_recipients(request) if self._waiting_on(name)]
        keyed = (request.program_id, request.idempotency_key, _transfer_hash(request))
        return self._keyed_verdict(
            offset, source_external_id, keyed, _event_encoder.encode(request), "transfer", waits_for
        )

    def operation_verdict(
        self, offset: int, external_id: str, command: ParticipantOperation, stock: Send | None = None
    ) -> Verdict:
        """:meth:`transfer_verdict` for a participant's balance operation (its key in the same namespace) or state
        write (no key: only parked behind the participant's waiting events, to keep the log's order). ``stock``: a
        catalog redemption's ask for its units (destination, StockAsk); it parks until that is answered too."""
        program_id, key = command.idempotency
        keyed = (program_id, key, operation_hash(command))
        body = _event_encoder.encode(command)
        return self._keyed_verdict(offset, external_id, keyed, body, "operation", [], stock)

    def _keyed_verdict(
        self,
        offset: int,
        external_id: str,
        keyed: tuple[str, str | None, str],
        body: bytes,
        kind: str,
        waits_for: list[str],
        stock: Send | None = None,
    ) -> Verdict:
        """A transfer's or an operation's verdict; ``keyed``: its (program id, idempotency key, payload hash)."""
        program_id, key, payload_hash = keyed
        blocked = self._waiting_on(external_id) or bool(waits_for)
        claim_program = _OPERATIONS_PREFIX + program_id
        key_partition = self._partition if key is None else claim_partition_for(claim_program, key, self._partitions)
        if key_partition == self._partition and not blocked and stock is None:
            return ("admit", [], None) if key is None else self._judge(claim_program, key, payload_hash, offset)
        parked = Parked(
            offset=offset,
            external_id=external_id,
            event=body,
            claim_partition=key_partition,
            kind=kind,
            waits_for=waits_for,  # a local recipient's earlier parked event (it may create the recipient)
            stock_from=None if stock is None else stock[0],
        )
        ops = [self.parked.park(parked)]
        if key is not None and key_partition != self._partition:
            claim = self._request(claim_program, key, payload_hash, offset)
            ops += self._send_ops(offset, [(key_partition, claim)], CLAIM_ORDINAL)
        if stock is not None:
            ops += self._send_ops(offset, [stock], STOCK_ASK_ORDINAL)
        return ("consume", ops, None)

    def _waiting_on(self, external_id: str) -> bool:
        return self.parked.blocked(external_id) or self.held(external_id)

    def _local_recipients(self, request: TransferCreate) -> list[str]:
        """The recipients of ``request`` that live on this partition, by their canonical external id."""
        names = []
        for recipient in request.recipients:
            if recipient.external_id is None:
                continue  # send_transfer refuses it
            try:
                name = canonical_external_id(recipient.external_id, _EXTERNAL_ID_MAX)
            except ScripError:
                continue
            if partition_for(name, self._partitions) == self._partition:
                names.append(name)
        return names

    def _request(self, claim_program: str, idempotency_key: str, payload_hash: str, offset: int) -> ClaimRequest:
        return ClaimRequest(
            program_id=claim_program,
            idempotency_key=idempotency_key,
            payload_hash=payload_hash,
            event_ref=f"{self._partition}@{offset}",
            reply_partition=self._partition,
            parked_offset=offset,
        )

    def _released_keyed(self, head: Parked) -> Verdict:
        """A parked transfer or operation at the head: refused (its key's answer was a conflict), or applied with
        these ops."""
        if head.kind == "transfer":
            transfer = _transfer_decoder.decode(head.event)
            program_id, key, payload_hash = transfer.program_id, transfer.idempotency_key, _transfer_hash(transfer)
        else:
            command = _operation_decoder.decode(head.event)
            program_id, key = command.idempotency
            payload_hash = operation_hash(command)
        if head.granted is False:
            assert head.conflict_event_ref is not None
            assert key is not None
            error = _conflict(key, head.conflict_event_ref)
            return ("refuse", [outcome_op(self._log, head.offset, error)], error)
        if head.granted is None and key is not None:  # its key is this partition's
            return self._judge(_OPERATIONS_PREFIX + program_id, key, payload_hash, head.offset)
        return ("admit", [], None)

    # --- effects: a claim asked of this partition, and an answer to one of its parked events -------------------

    def on_request(self, offset: int, request: ClaimRequest) -> list[Op]:
        """Claim the key (or find it claimed) and answer; the ops of the request's record (with the answer)."""
        assert request.reply_partition != self._partition, request
        existing = self._claim_of(request.program_id, request.idempotency_key)
        ops: list[Op] = []
        if existing is None:
            claim = Claim(
                payload_hash=request.payload_hash.encode(), event_id=request.event_ref, claimed_at_ms=_now_ms()
            )
            ops += self._claimed(request.program_id, request.idempotency_key, claim)
            answer = ClaimAnswer(parked_offset=request.parked_offset, granted=True)
        elif existing.payload_hash == request.payload_hash.encode():
            answer = ClaimAnswer(parked_offset=request.parked_offset, granted=True)
        else:
            answer = ClaimAnswer(
                parked_offset=request.parked_offset, granted=False, conflict_event_ref=existing.event_id
            )
        return ops + self._send_ops(offset, [(request.reply_partition, answer)], 0)

    def on_answer(self, answer: ClaimAnswer) -> list[Op]:
        """Record the answer on the parked event (nothing for a copy of an answer already recorded)."""
        found = self.parked.answer(answer.parked_offset, answer.granted, answer.conflict_event_ref)
        return [] if found is None else [found[1]]

    # --- releasing parked events -------------------------------------------------------------------------------

    async def release_ready(self) -> bool:
        """Admit or refuse every participant's head event that can be judged now, repeatedly, until none can;
        returns False if one could not be (``Overloaded``: it stays parked, and the caller must not apply any
        later record before it is released, or the outcome would depend on timing).

        The admissions are appended, not awaited: the caller's next durable point covers them (the claims they
        make are in ``_recent`` until then). A released transfer or credit is applied, and awaited, in turn."""
        while ready := await self._ready():
            for head in ready:
                if head.kind == "event":
                    if not self._release(head):
                        return False
                    continue
                await wait_quiet(self._engine)  # what was applied before it may have held a step
                if self.held(head.external_id) or any(self.held(name) for name in head.waits_for):
                    continue
                keyed = head.kind in ("transfer", "operation")
                verdict, extra, _ = self._released_keyed(head) if keyed else ("admit", [], None)
                release = self.parked.release_op(head)
                self.parked.pop(head)
                if verdict == "refuse":  # its key was taken: units granted for it go back
                    self._engine._writer.append([release, *extra, *self.refund_ops(head)])
                else:  # after every earlier record is processed, as any transfer or credit; extra: its claim
                    await self._apply_released(head, [release], extra)
        return True

    async def _ready(self) -> list[Parked]:
        """The heads :meth:`release_ready` can judge now. A transfer or credit is applied after every earlier step
        has run, and a step may be held for its wallet then: its participant's records must wait behind it."""
        ready = self.parked.ready(self.held)
        if any(head.kind != "event" for head in ready):
            await wait_quiet(self._engine)
            ready = self.parked.ready(self.held)
        return ready

    def _release(self, head: Parked) -> bool:
        """Admit or refuse ``head`` (False: overloaded, still parked)."""
        engine, request = self._engine, _event_decoder.decode(head.event)
        release = self.parked.release_op(head)
        if head.granted is False:
            assert head.conflict_event_ref is not None
            error = _conflict(request.idempotency_key, head.conflict_event_ref)
            engine._writer.append([release, outcome_op(self._log, head.offset, error)])
            self.parked.pop(head)
            return True
        extra: list[Op] = []
        if head.granted is None:  # its key is this partition's: judged now that it is the head
            try:
                payload_hash = engine._admission.check_event(request)[3]
                verdict, extra, _ = self._judge_here(request, payload_hash, head.offset)
            except ScripError:
                verdict = "admit"  # the admission refuses it below, with the same error
            if verdict == "refuse":
                engine._writer.append([release, *extra])
                self.parked.pop(head)
                return True
        try:
            _, is_new = engine._admission.accept(request, extra_ops=[release, *extra])
        except Overloaded:
            self.drop(head.offset)
            return False
        except ScripError as error:
            self.drop(head.offset)
            engine._writer.append([release, outcome_op(self._log, head.offset, error)])
            self.parked.pop(head)
            return True
        if is_new:
            self.confirm(head.offset)
        else:
            self.drop(head.offset)
            engine._writer.append([release])
        self.parked.pop(head)
        return True


def _transfer_hash(request: TransferCreate) -> str:
    """A transfer's payload hash for its key's claim: the whole request, source and recipients included."""
    return hashlib.sha256(_event_encoder.encode(request)).hexdigest()


def _now_ms() -> int:
    return int(time.time() * 1000)
