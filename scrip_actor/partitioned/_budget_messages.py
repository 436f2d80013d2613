"""What partitions say to each other about a rule budget shared by all of them (payloads of the outbox's effects).

A rule's budget of an asset (docs/budgets.md) has one **owner partition**, :func:`budget_owner` (the routing rule
over ``budget NUL rule NUL asset``). Each other partition spends a **lease** of it: its ``BudgetState.leased_minor``
for the current period, what the owner granted it. The owner's own allowance is the limit less what it leased out
(scrip_actor/budgets.py). A match a partition's allowance cannot take, though the limit could, is held while the
partition asks (:mod:`._budget_leases`), as a credit short of a shared wallet is (:mod:`._wallet_messages`, whose
protocol this one follows; only what moves differs: a count in the budget's state, not value between accounts):

* :class:`BudgetAsk` (partition → owner): "this period I am short by ``need_minor``". The owner grants at least that
  (a share of the remainder while plenty is left), adding it to its ``leased_minor``; the asker adds it to its own.
* When the remainder cannot cover an ask and leases are out: the **endgame**. :class:`BudgetRecall` to every other
  partition; each answers :class:`BudgetReturn` with what its lease has not consumed (its lease shrinks to what it
  consumed, so it can take no more), and the owner serves the queued asks exactly from the pooled remainder, denying
  what it cannot cover. A denied match is skipped as ``BUDGET_EXCEEDED``, as on one process.
* :class:`BudgetAnswer` (owner → partition): the grant, or ``denied``.

Every message names its **period** (``period_end``: the budget's ``next_reset_at``, None for a lifetime budget).
Partitions that copied one template store share the schedule's grid, so they name a period alike; each applies
resets by its own wall clock. A grant or a return for a period that is not the receiver's current one moves
nothing: a lease lapses with its period, and the owner's book of a new period starts from the whole limit. So the
rule's issue within one period, summed over every partition, never exceeds the limit.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from scrip_actor.partitioned._routing import partition_for

__all__ = ["BudgetAnswer", "BudgetAsk", "BudgetRecall", "BudgetReturn", "budget_owner"]


class BudgetAsk(msgspec.Struct, frozen=True, kw_only=True, tag="budget_ask"):
    """A partition's lease of a budget is short of a held match by ``need_minor`` (> 0) in period ``period_end``;
    the match issues ``full_need_minor`` in all (what the endgame serves, after the recall emptied the lease). The
    owner's own ask names the whole amount as both."""

    rule_id: str
    asset_id: str
    period_end: datetime | None
    need_minor: int
    full_need_minor: int
    ask_id: int  # the asker's own number for it (its outbox record's origin offset)
    actor: str  # the held participant and event: the answer names them back (see _wallet_messages.LeaseAsk)
    event_id: str


class BudgetAnswer(msgspec.Struct, frozen=True, kw_only=True, tag="budget_answer"):
    """The owner's answer to one ask: ``amount_minor`` more for the asker's lease of period ``period_end`` (0 to
    the owner itself, on a denial, or for an ask of a period the owner is not in: the asker runs again and asks for
    the period it is in then)."""

    rule_id: str
    asset_id: str
    period_end: datetime | None
    ask_id: int
    actor: str
    event_id: str
    amount_minor: int
    denied: bool = False


class BudgetRecall(msgspec.Struct, frozen=True, kw_only=True, tag="budget_recall"):
    """The owner's endgame round ``round`` of period ``period_end``: return what the lease has not consumed."""

    rule_id: str
    asset_id: str
    period_end: datetime | None
    round: int


class BudgetReturn(msgspec.Struct, frozen=True, kw_only=True, tag="budget_return"):
    """A partition's answer to a recall: ``amount_minor`` (>= 0) of its lease of period ``period_end`` given back."""

    rule_id: str
    asset_id: str
    period_end: datetime | None
    round: int
    amount_minor: int


BudgetMessage = BudgetAsk | BudgetAnswer | BudgetRecall | BudgetReturn


def budget_owner(rule_id: str, asset_id: str, partitions: int) -> int:
    """The partition that owns a rule's budget of an asset and grants its leases."""
    return partition_for(f"budget\0{rule_id}\0{asset_id}", partitions)
