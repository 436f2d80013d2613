"""A participant's balance operation or state write as a record of the events topic (the front's
``POST …/balances/{operation}``, and ``PUT``/``PATCH``/``DELETE …/state/...``, ``_state_writes.py``).

The front produces it to the partition its ``participant_id`` names (an id's first 8 hex digits are its
partition, ``_partition_ids.py``) with the ``scrip-kind: operation`` header; that partition's applier
(``_apply.py``) runs it with the embedded engine's own operation, in turn with the participant's events, and
writes the log offset and the operation's answer in the operation's own LMDB record. The answer (or the refusal)
is kept under the record's position (``_outcomes.py``), where ``GET /v1/log-records/{partition}/{offset}`` finds
it and the front waits for it.
"""

from __future__ import annotations

import hashlib
from typing import Literal

import msgspec

from scrip_actor.model import (
    BalanceAdjust,
    BalanceOperation,
    ItemRedemptionCreate,
    ParticipantCreate,
    ParticipantUpdate,
    RedemptionCreate,
    ReversalCreate,
)
from scrip_actor.tiers import TierStateSet

__all__ = [
    "ITEM_REDEMPTION",
    "OPERATION_PATHS",
    "REDEMPTION",
    "REVERSAL",
    "UPSERT",
    "ParticipantOperation",
    "StateWrite",
    "operation_hash",
]

BalanceOperationName = Literal["ADJUST", "HOLD", "RELEASE", "FORFEIT", "VOID_HOLD"]
# The state writes (scrip_actor.engine.STATE_WRITE_NAMES: a test keeps the two the same).
StateWriteName = Literal[
    "TAGS_REPLACE",
    "TAG_ADD",
    "TAG_REMOVE",
    "ATTRIBUTES_MERGE",
    "ATTRIBUTE_SET",
    "ATTRIBUTE_DELETE",
    "COUNTER_SET",
    "COUNTER_DELETE",
    "PROFILE_UPDATE",
    "STATUS_SET",
    "TIER_SET",
    "TIER_DELETE",
]
# POST /v1/participants: an upsert by external id, at the partition the id routes to (_state_writes.py).
UPSERT = "PARTICIPANT_UPSERT"
# POST /v1/participants/{id}/redemptions: a points redemption, keyed like a balance operation (_front_operations.py).
REDEMPTION = "REDEMPTION"
# POST /v1/participants/{id}/redemptions/items: a catalog reward's, the same way (a reward with a max_total is refused
# at the partition: its stock would have to be shared across partitions, _apply.py)
ITEM_REDEMPTION = "ITEM_REDEMPTION"
# POST /v1/redemptions/{id}/reverse: at the partition the redemption's id names; the record names the redemption,
# not its participant (the front does not know it): the applier finds both its participant and its program there.
REVERSAL = "REDEMPTION_REVERSAL"
OperationName = (
    BalanceOperationName
    | StateWriteName
    | Literal["PARTICIPANT_UPSERT", "REDEMPTION", "ITEM_REDEMPTION", "REDEMPTION_REVERSAL"]
)
_BALANCE_OPERATIONS = frozenset(BalanceOperationName.__args__)  # type: ignore[attr-defined]
# The embedded routes' last path segment (POST /v1/participants/{participant_id}/balances/<segment>).
OPERATION_PATHS: dict[str, BalanceOperationName] = {
    "adjust": "ADJUST",
    "hold": "HOLD",
    "release": "RELEASE",
    "forfeit": "FORFEIT",
    "void-hold": "VOID_HOLD",
}

_encoder = msgspec.json.Encoder()
# The StateWrite fields each write needs (a record from another producer that lacks one is refused on decoding,
# not run into a TypeError at the engine).
_STATE_ARGUMENTS: dict[str, tuple[str, ...]] = {
    "TAGS_REPLACE": ("tags",),
    "TAG_ADD": ("key",),
    "TAG_REMOVE": ("key",),
    "ATTRIBUTES_MERGE": ("attributes",),
    "ATTRIBUTE_SET": ("key", "value"),
    "ATTRIBUTE_DELETE": ("key",),
    "COUNTER_SET": ("key", "value"),
    "COUNTER_DELETE": ("key",),
    "PROFILE_UPDATE": ("profile",),
    "STATUS_SET": ("value",),
    "TIER_SET": ("key", "program_id", "tier"),
    "TIER_DELETE": ("key", "program_id"),
    "PARTICIPANT_UPSERT": ("create",),
}


class StateWrite(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """A state write's arguments: ``key`` the path's tag or key; the body's ``tags``, ``attributes``, ``value`` (a
    status for STATUS_SET), ``reset_after`` and a ``PATCH /v1/participants/{id}``'s ``profile``, as the embedded
    route's body type decoded them (the engine checks them again, as it does for the embedded route)."""

    key: str | None = None
    tags: list[str] | None = None
    attributes: dict[str, str] | None = None
    value: str | None = None
    reset_after: str | None = None
    profile: ParticipantUpdate | None = None
    create: ParticipantCreate | None = None  # PARTICIPANT_UPSERT's body
    program_id: str | None = None  # a tier write's ?program_id=
    tier: TierStateSet | None = None  # TIER_SET's body


class ParticipantOperation(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One balance operation or state write on one participant: ``adjust`` for ADJUST, ``balance`` for the other
    balance operations (each the embedded route's body, checked again when the record is decoded), ``state`` for a
    state write."""

    operation: OperationName
    participant_id: str
    adjust: BalanceAdjust | None = None
    balance: BalanceOperation | None = None
    state: StateWrite | None = None
    redemption: RedemptionCreate | None = None
    item: ItemRedemptionCreate | None = None  # ITEM_REDEMPTION's body
    # REDEMPTION, ITEM_REDEMPTION: the id a new redemption gets (the front's, of this partition); REDEMPTION_REVERSAL:
    # the redemption it reverses (its participant_id is "": the applier finds the participant by the redemption)
    redemption_id: str | None = None
    reversal: ReversalCreate | None = None
    reversal_id: str | None = None  # REDEMPTION_REVERSAL: the id a new reversal gets (the front's)
    # REDEMPTION_REVERSAL: the redemption's program, which its key is claimed in; None from the front, filled in with
    # the participant_id by the applier, which finds both by the redemption (_apply.py), before parking it
    program_id: str | None = None

    def __post_init__(self) -> None:
        # A record names exactly the body its operation takes (msgspec turns this into a decode error).
        wanted = (
            "adjust"
            if self.operation == "ADJUST"
            else "balance"
            if self.is_balance
            else "redemption"
            if self.operation == REDEMPTION
            else "item"
            if self.operation == ITEM_REDEMPTION
            else "reversal"
            if self.operation == REVERSAL
            else "state"
        )
        given = {
            "adjust": self.adjust,
            "balance": self.balance,
            "state": self.state,
            "redemption": self.redemption,
            "item": self.item,
            "reversal": self.reversal,
        }
        if given.pop(wanted) is None or any(body is not None for body in given.values()):
            raise ValueError(f"a {self.operation} record carries {wanted}, and only it")
        if (self.redemption_id is not None) != (self.operation in (REDEMPTION, ITEM_REDEMPTION, REVERSAL)):
            raise ValueError("a redemption's or a reversal's record names its redemption_id, and only they")
        if (self.reversal_id is not None) != (self.operation == REVERSAL):
            raise ValueError("a REDEMPTION_REVERSAL record names its reversal_id, and only it")
        if self.program_id is not None and self.operation != REVERSAL:
            raise ValueError("only a REDEMPTION_REVERSAL record names a program_id")
        if self.state is not None:  # the pair of the front building them: a write's own arguments, all given
            missing = [name for name in _STATE_ARGUMENTS[self.operation] if getattr(self.state, name) is None]
            if missing:
                raise ValueError(f"a {self.operation} record's state carries {', '.join(missing)}")

    @property
    def is_balance(self) -> bool:
        """A balance operation (ADJUST, HOLD, ...; a redemption and a state write are not)."""
        return self.operation in _BALANCE_OPERATIONS

    @property
    def request(self) -> BalanceAdjust | BalanceOperation:
        """A balance operation's body."""
        found = self.adjust if self.operation == "ADJUST" else self.balance
        assert found is not None, self.operation
        return found

    @property
    def idempotency(self) -> tuple[str, str | None]:
        """The program and idempotency key its key is claimed under: a state write has none (a PUT or a DELETE
        is idempotent by its meaning; sent twice, it is applied twice, to the same end). A reversal's program is
        its redemption's, which the applier fills in (``program_id``)."""
        if self.reversal is not None:
            assert self.program_id is not None, "a reversal's key is claimed in its redemption's program"
            return self.program_id, self.reversal.idempotency_key
        if self.redemption is not None:
            return self.redemption.program_id, self.redemption.idempotency_key
        if self.item is not None:
            return self.item.program_id, self.item.idempotency_key
        if not self.is_balance:
            return "", None
        request = self.request
        return request.program_id, request.idempotency_key


def operation_hash(command: ParticipantOperation) -> str:
    """The payload hash its idempotency key is claimed with: operation, participant and body (not a redemption's
    id: the front names a new one each time it is sent, and a resent redemption is the same request)."""
    if command.reversal is not None:  # the redemption it reverses is part of "the same request", its new id not
        return hashlib.sha256(_encoder.encode([command.operation, command.redemption_id, command.reversal])).hexdigest()
    if command.item is not None:
        return hashlib.sha256(_encoder.encode([command.operation, command.participant_id, command.item])).hexdigest()
    if command.redemption is None:  # the record itself, as before redemptions and reversals were routed
        fields = {name: getattr(command, name) for name in _HashedRecord.__struct_fields__}
        return hashlib.sha256(_encoder.encode(_HashedRecord(**fields))).hexdigest()
    return hashlib.sha256(_encoder.encode([command.operation, command.participant_id, command.redemption])).hexdigest()


class _HashedRecord(msgspec.Struct, kw_only=True):
    """The record's fields as they were before reversals were routed, in their order: the hash a balance
    operation's key is claimed with stays what it was, so a key claimed before an upgrade is not a 409 after it."""

    operation: OperationName
    participant_id: str
    adjust: BalanceAdjust | None
    balance: BalanceOperation | None
    state: StateWrite | None
    redemption: RedemptionCreate | None
    redemption_id: str | None
