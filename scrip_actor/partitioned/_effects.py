"""Effect records: what one partition's relay sends another, decoded and checked before anything is applied.

An ``effect`` record's value is an :class:`~scrip_actor.partitioned._outbox.OutboxRecord` (msgpack: small integers
and bytes); its payload is one of the commands below as JSON (an amount is an integer of any size: a scale-18
asset's amounts exceed 64 bits, which msgpack cannot carry). A record that does not decode, is not addressed to
this partition, names itself as its origin, or whose payload contradicts its envelope is refused here, so a bad
record never stops a partition (it is passed over with its position, like a malformed event).

Trust: the events topic must be writable only by the fronts and the engines (broker ACLs): an effect is applied as
its origin partition's word, as a transfer's credit (docs/partitioned.md, production).
"""

from __future__ import annotations

from typing import NamedTuple

import msgspec

from scrip_actor.engine import TransitCredit
from scrip_actor.errors import ScripError, ValidationFailed
from scrip_actor.partitioned._budget_messages import BudgetAnswer, BudgetAsk, BudgetRecall, BudgetReturn, budget_owner
from scrip_actor.partitioned._claims import ClaimAnswer, ClaimRequest
from scrip_actor.partitioned._outbox import OutboxRecord
from scrip_actor.partitioned._reward_stock import StockAnswer, StockAsk, StockReturn, stock_owner
from scrip_actor.partitioned._wallet_messages import LeaseAnswer, LeaseAsk, LeaseRecall, LeaseReturn, wallet_owner

__all__ = ["Effect", "Payload", "effect_from", "encode_payload"]

Payload = (
    TransitCredit | ClaimRequest | ClaimAnswer | LeaseAsk | LeaseAnswer | LeaseRecall | LeaseReturn
    | BudgetAsk | BudgetAnswer | BudgetRecall | BudgetReturn | StockAsk | StockAnswer | StockReturn
)  # fmt: skip
# The owner of a wallet or a budget asks itself for more, and answers itself, through its own log like any partition
# (so its held steps wait in log order too): the only effects whose origin may be their destination.
_SELF_ADDRESSED = (LeaseAsk, LeaseAnswer, BudgetAsk, BudgetAnswer)

_record_decoder = msgspec.msgpack.Decoder(OutboxRecord)
_payload_decoder = msgspec.json.Decoder(Payload)
_payload_encoder = msgspec.json.Encoder()


class Effect(NamedTuple):
    """A checked effect: its envelope (origin, offset, ordinal: the dedupe key) and its command."""

    record: OutboxRecord
    payload: Payload


def encode_payload(payload: Payload) -> bytes:
    """The payload bytes an :class:`OutboxRecord` carries."""
    return _payload_encoder.encode(payload)


def _problem(record: OutboxRecord, payload: Payload, partition: int, partitions: int) -> str | None:
    """Why this effect cannot be applied here (None: it can)."""
    if record.destination_partition != partition:
        return f"it is for partition {record.destination_partition}"
    if not 0 <= record.origin_partition < partitions:
        return f"its origin partition {record.origin_partition} is not a partition of the topic"
    if record.origin_partition == partition and not isinstance(payload, _SELF_ADDRESSED):
        return f"its origin partition {record.origin_partition} is not another partition of the topic"
    if isinstance(payload, LeaseAsk) and (
        not 0 < payload.need_minor <= payload.full_need_minor or payload.ask_id != record.origin_offset
    ):
        return "a lease ask needs a positive amount, numbered by its record"
    if isinstance(payload, LeaseAnswer | LeaseReturn) and payload.amount_minor < 0:
        return "a lease moves a non-negative amount"
    if isinstance(payload, LeaseAsk | LeaseAnswer | LeaseRecall | LeaseReturn):
        owner = wallet_owner(payload.program_id, payload.asset_id, partitions)
        to_owner = isinstance(payload, LeaseAsk | LeaseReturn)
        if (record.destination_partition if to_owner else record.origin_partition) != owner:
            return f"a lease message goes {'to' if to_owner else 'from'} the wallet's owner, partition {owner}"
    if isinstance(payload, BudgetAsk | BudgetAnswer | BudgetRecall | BudgetReturn):
        return _budget_problem(record, payload, partitions)
    if isinstance(payload, StockAsk | StockAnswer | StockReturn):
        return _stock_problem(record, payload, partitions)
    if isinstance(payload, ClaimRequest):
        if payload.reply_partition != record.origin_partition or payload.parked_offset != record.origin_offset:
            return "a claim request must be answered to the event that sent it"
    elif isinstance(payload, TransitCredit):
        if payload.amount_minor <= 0 or payload.from_partition != record.origin_partition:
            return "a credit moves a positive amount out of its origin's transit account"
        if payload.purpose == "TRANSFER" and not payload.source_external_id:
            return "a transfer's credit names its source, to whom a refusal returns it"
    return None


def _budget_problem(
    record: OutboxRecord, payload: BudgetAsk | BudgetAnswer | BudgetRecall | BudgetReturn, partitions: int
) -> str | None:
    """Why a shared budget's message cannot be applied here (None: it can). An ask's need may exceed the match's
    amount (a lease short of what it had consumed already); it is positive, as every amount is non-negative."""
    if isinstance(payload, BudgetAsk) and (
        payload.need_minor <= 0 or payload.full_need_minor <= 0 or payload.ask_id != record.origin_offset
    ):
        return "a budget ask needs a positive amount, numbered by its record"
    if isinstance(payload, BudgetAnswer | BudgetReturn) and payload.amount_minor < 0:
        return "a budget lease moves a non-negative amount"
    owner = budget_owner(payload.rule_id, payload.asset_id, partitions)
    to_owner = isinstance(payload, BudgetAsk | BudgetReturn)
    if (record.destination_partition if to_owner else record.origin_partition) != owner:
        return f"a budget message goes {'to' if to_owner else 'from'} the budget's owner, partition {owner}"
    return None


def _stock_problem(record: OutboxRecord, payload: StockAsk | StockAnswer | StockReturn, partitions: int) -> str | None:
    """Why a reward stock's message cannot be applied here (None: it can)."""
    if isinstance(payload, StockAsk) and (
        payload.units <= 0
        or payload.reply_partition != record.origin_partition
        or payload.parked_offset != record.origin_offset
    ):
        return "a stock ask needs positive units, answered to the redemption that sent it"
    if isinstance(payload, StockReturn) and payload.units <= 0:
        return "a stock return gives back positive units"
    owner = stock_owner(payload.reward_id, partitions)
    to_owner = isinstance(payload, StockAsk | StockReturn)
    if (record.destination_partition if to_owner else record.origin_partition) != owner:
        return f"a stock message goes {'to' if to_owner else 'from'} the reward's owner, partition {owner}"
    return None


def effect_from(value: bytes, offset: int, partition: int, partitions: int) -> Effect | ScripError:
    """Decode and check the effect record at ``offset`` of this partition."""
    try:
        record = _record_decoder.decode(value)
        payload = _payload_decoder.decode(record.payload)
    except msgspec.DecodeError as error:
        return ValidationFailed(f"record at offset {offset} is not an effect: {error}", {"offset": offset})
    problem = _problem(record, payload, partition, partitions)
    if problem is not None:
        return ValidationFailed(f"effect at offset {offset} refused: {problem}", {"offset": offset})
    return Effect(record, payload)
