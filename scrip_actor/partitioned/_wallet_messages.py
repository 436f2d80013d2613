"""What partitions say to each other about a shared PREFUNDED wallet (payloads of the outbox's effect records).

A program's wallet of a PREFUNDED asset has one **owner partition**, :func:`wallet_owner` (the routing rule over
``wallet NUL program NUL asset``): it holds the funding (the front's ``POST …/assets/{asset_id}/fund`` is produced
there) and hands it out. Every partition's own wallet account is its **lease**: what it may spend without asking.
A credit its lease cannot cover is held (scrip_actor/partitioned/_wallet_leases.py) while the partition asks the
owner for more:

* :class:`LeaseAsk` (partition → owner): "I am short by ``need_minor``". The owner answers with a grant of at
  least that much (more while it is well funded: a share of what it holds, so the next credits need no round trip),
  moved through the transit accounts like a transfer's value.
* When the owner holds less than the ask needs, the **endgame**: it sends :class:`LeaseRecall` to every other
  partition, each answers with :class:`LeaseReturn` carrying everything its lease holds, and the owner then serves
  the asks that waited, in order, from the pooled remainder (denying what it cannot cover). So the last units go
  to whoever needs them, never stranded in a quiet partition's lease, and never one unit overspent: a partition
  spends only what its own wallet account holds, and value moves only as balanced entries through transit.
* :class:`LeaseAnswer` (owner → partition): the grant (``amount_minor`` > 0), or ``denied``.

Every message is applied once at its destination (the outbox's applied markers), in the destination's log order.
"""

from __future__ import annotations

import msgspec

from scrip_actor.partitioned._routing import partition_for

__all__ = ["LeaseAnswer", "LeaseAsk", "LeaseRecall", "LeaseReturn", "WalletFund", "wallet_owner", "wallet_routing_key"]


class LeaseAsk(msgspec.Struct, frozen=True, kw_only=True, tag="lease_ask"):
    """A partition's lease of a wallet is short of a held credit by ``need_minor`` (> 0); the credit is
    ``full_need_minor`` in all (what the endgame serves, after the recall emptied the lease). The owner's own ask
    names the whole credit as both: its lease is the remainder itself."""

    program_id: str
    asset_id: str
    need_minor: int
    full_need_minor: int
    ask_id: int  # the asker's own number for it (its outbox record's origin offset)
    actor: str  # the held participant (its external id) and event: the answer names them back, so that it
    event_id: str  # resumes the right step even when it reaches a restarted partition that forgot the ask


class LeaseAnswer(msgspec.Struct, frozen=True, kw_only=True, tag="lease_answer"):
    """The owner's answer to one ask: ``amount_minor`` moved out of its transit account to the asker's wallet
    account (0 when the asker is the owner itself, or denied)."""

    program_id: str
    asset_id: str
    ask_id: int
    actor: str
    event_id: str
    amount_minor: int
    denied: bool = False


class LeaseRecall(msgspec.Struct, frozen=True, kw_only=True, tag="lease_recall"):
    """The owner's endgame round ``round``: return everything the lease holds."""

    program_id: str
    asset_id: str
    round: int


class LeaseReturn(msgspec.Struct, frozen=True, kw_only=True, tag="lease_return"):
    """A partition's answer to a recall: ``amount_minor`` (>= 0) moved into its transit account for the owner."""

    program_id: str
    asset_id: str
    round: int
    amount_minor: int


class WalletFund(msgspec.Struct, frozen=True, kw_only=True):
    """A ``scrip-kind: fund`` record: the front's ``POST /v1/programs/{id}/assets/{asset_id}/fund``, produced to
    the wallet's owner partition (``amount`` a decimal string, as on the embedded API)."""

    program_id: str
    asset_id: str
    amount: str
    description: str | None = None


def wallet_routing_key(program_id: str, asset_id: str) -> str:
    """The routing key of a program's wallet of an asset (its records go to :func:`wallet_owner`)."""
    return f"wallet\0{program_id}\0{asset_id}"


def wallet_owner(program_id: str, asset_id: str, partitions: int) -> int:
    """The partition that holds a wallet's funding and grants its leases."""
    return partition_for(wallet_routing_key(program_id, asset_id), partitions)
