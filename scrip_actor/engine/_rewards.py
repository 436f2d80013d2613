"""The reward catalog of each program, and the exact counting of what has been redeemed from it.

A reward's ``redeemed_count`` is shared by every participant, and ``max_total`` must hold exactly under any
concurrency. Every redemption of a reward runs as a step (engine/_redemptions), and steps run one at a time on
the dispatcher, so :meth:`Rewards.check` (in the step, before the ledger work) and :meth:`Rewards.count` (in the
same step, once the entry has committed) cannot interleave with another participant's: no unit is ever sold
twice. The counts are written in the same LMDB record as the redemption (the reward record with its new count,
and ``reward_counts[reward NUL participant]`` for ``max_per_participant``), so a crash keeps both or neither.

Partitioned mode shares a reward's ``max_total`` across partitions (scrip_actor/partitioned/_reward_stock.py): it
sets :attr:`Rewards.shared_stock`, and the ``max_total`` test and count of a limited reward go through it instead.

Catalog edits (create, update) are direct writes, like program and asset changes; they carry the count held in
memory, which is the truth (memory is always at least as new as the disk).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

import msgspec

from scrip_actor.config import Limits
from scrip_actor.durations import utc
from scrip_actor.engine._catalog import Catalog
from scrip_actor.engine._durable_lru import DurableLru
from scrip_actor.engine._queries import page_in_memory, page_size
from scrip_actor.engine._validation import new_id, positive_minor, validated
from scrip_actor.errors import Conflict, NotFound, ValidationFailed
from scrip_actor.model import Page, Reward, RewardCreate, RewardUpdate
from scrip_actor.store import Op, Store, Writer, be64, encode, unbe64

__all__ = ["Rewards"]

_COUNTS_RESIDENT_MAX = 100_000  # (reward, participant) counts kept in memory; the rest are read back on use


class SharedStock(Protocol):
    """Where a limited reward's units are counted when partitions share them (partitioned/_reward_stock.py)."""

    def check(self, reward: Reward, units: int) -> None:
        """Raise the refusal if ``units`` more of ``reward`` may not be sold now."""

    def moved(self, reward: Reward, units: int) -> list[Op]:
        """``units`` sold (> 0) or given back (< 0) in this step: the ops that record it, in its record."""


class Rewards:
    """CRUD of ``…/programs/{id}/rewards`` and the counts redemptions keep (see the module docstring)."""

    def __init__(
        self, *, catalog: Catalog, store: Store, writer: Writer, clock: Callable[[], datetime], limits: Limits
    ) -> None:
        self._catalog = catalog
        self._store = store
        self._writer = writer
        self._clock = clock
        self._limits = limits
        self.rewards: dict[str, Reward] = {}
        self.shared_stock: SharedStock | None = None  # None: one process, max_total counted here alone
        # Read through from reward_counts, bounded; an entry leaves memory only once durable (engine/_durable_lru).
        self._per_participant: DurableLru[tuple[str, str], int] = DurableLru(writer, _COUNTS_RESIDENT_MAX)

    def load(self) -> None:
        """Read the catalog back from the store (on open)."""
        for _, raw in self._store.scan("rewards"):
            reward = msgspec.json.decode(raw, type=Reward)
            assert reward.redeemed_count >= 0
            self.rewards[reward.id] = reward

    # --- the catalog ------------------------------------------------------------------------------------------

    async def create(self, program_id: str, request: RewardCreate) -> Reward:
        """Add a reward to a program's catalog."""
        request = validated(request)
        self._catalog.program(program_id)
        asset = self._catalog.asset(request.asset_id)
        if program_id not in asset.program_ids:
            raise ValidationFailed.field("asset_id", "not_linked", f"asset {asset.symbol} is not linked to the program")
        positive_minor(request.unit_cost, asset.scale, "unit_cost")
        now = self._clock()
        fields = msgspec.structs.asdict(request)
        fields.update(_window(request.available_from, request.available_until))
        reward = Reward(id=new_id(), program_id=program_id, created_at=now, updated_at=now, **fields)
        await self._save(reward)
        return reward

    def get(self, program_id: str, reward_id: str) -> Reward:
        """One reward of a program (404 for another program's)."""
        reward = self.rewards.get(reward_id)
        if reward is None or reward.program_id != program_id:
            raise NotFound("reward", reward_id)
        return reward

    def list(
        self,
        program_id: str,
        *,
        status: str | None = None,
        include_archived: bool = False,
        search: str | None = None,
        sort_by: str = "created_at",
        sort_dir: str = "desc",
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page:
        """A program's rewards: archived ones only when asked for (or by status); ``search`` in the name."""
        self._catalog.program(program_id)
        needle = search.casefold() if search else None
        rewards = [
            reward
            for reward in self.rewards.values()
            if reward.program_id == program_id
            and (include_archived or reward.status != "ARCHIVED" or status == "ARCHIVED")
            and (status is None or reward.status == status)
            and (needle is None or needle in reward.name.casefold())
        ]
        key = _by_name if sort_by == "name" else _by_creation
        return page_in_memory(
            rewards, limit=page_size(limit, self._limits), cursor=cursor, key=key, descending=sort_dir == "desc"
        )

    async def update(self, program_id: str, reward_id: str, request: RewardUpdate) -> Reward:
        """Change any field but the type and the asset; an ARCHIVED reward stays so."""
        request = validated(request)
        reward = self.get(program_id, reward_id)
        changes = {
            name: getattr(request, name) for name in request.__struct_fields__ if getattr(request, name) is not None
        }
        if not changes:
            raise ValidationFailed("give at least one field to change")
        if reward.status == "ARCHIVED":
            raise Conflict(f"reward {reward_id} is archived")
        if "unit_cost" in changes:
            positive_minor(changes["unit_cost"], self._catalog.asset(reward.asset_id).scale, "unit_cost")
        changes.update(
            _window(
                changes.get("available_from", reward.available_from),
                changes.get("available_until", reward.available_until),
            )
        )
        updated = msgspec.structs.replace(self.rewards[reward_id], **changes, updated_at=self._clock())
        await self._save(updated)
        return updated

    async def _save(self, reward: Reward) -> None:
        self.rewards[reward.id] = reward
        await self._writer.wait_durable(self._writer.append([_reward_op(reward)]))

    # --- the counts (in a redemption's step) ------------------------------------------------------------------

    def check(self, reward_id: str, participant_id: str, units: int, now: datetime) -> Reward:
        """Refuse (409) a redemption of ``units`` the reward cannot give now: not ACTIVE, outside its window, or
        past ``max_total`` or ``max_per_participant``. Changes nothing (see :meth:`count`)."""
        reward = self.rewards[reward_id]
        if reward.status != "ACTIVE":
            raise Conflict(f"reward {reward.name!r} is {reward.status}", {"reason": "reward_unavailable"})
        if (reward.available_from is not None and now < reward.available_from) or (
            reward.available_until is not None and now >= reward.available_until
        ):
            raise Conflict(f"reward {reward.name!r} is not available now", {"reason": "reward_unavailable"})
        if reward.max_total is not None and self.shared_stock is not None:
            self.shared_stock.check(reward, units)
        elif reward.max_total is not None and reward.redeemed_count + units > reward.max_total:
            left = reward.max_total - reward.redeemed_count
            raise Conflict(f"reward {reward.name!r} has {left} left", {"reason": "max_total_reached"})
        mine = self._count_of(reward_id, participant_id)
        if reward.max_per_participant is not None and mine + units > reward.max_per_participant:
            raise Conflict(
                f"reward {reward.name!r}: at most {reward.max_per_participant} per participant, {mine} redeemed",
                {"reason": "max_per_participant_reached"},
            )
        return reward

    def count(self, reward_id: str, participant_id: str, units: int, now: datetime) -> list[Op]:
        """Add ``units`` (negative: a reversal) to the reward's counts, in memory; returns the ops that store them."""
        reward = self.rewards[reward_id]
        shared: list[Op] = []
        if reward.max_total is not None and self.shared_stock is not None and units:
            shared = self.shared_stock.moved(reward, units)  # before the count changes: it may read it
        total = reward.redeemed_count + units
        mine = self._count_of(reward_id, participant_id) + units
        assert total >= 0
        assert mine >= 0
        updated = self.rewards[reward_id] = msgspec.structs.replace(reward, redeemed_count=total, updated_at=now)
        self._per_participant.written((reward_id, participant_id), mine)
        return [_reward_op(updated), ("reward_counts", _count_key(reward_id, participant_id), be64(mine)), *shared]

    def _count_of(self, reward_id: str, participant_id: str) -> int:
        key = (reward_id, participant_id)
        count = self._per_participant.get(key)
        if count is None:
            raw = self._store.get_raw("reward_counts", _count_key(reward_id, participant_id))
            count = 0 if raw is None else unbe64(raw)
            self._per_participant.loaded(key, count)
        return count


def _window(available_from: datetime | None, available_until: datetime | None) -> dict[str, Any]:
    try:
        start = utc(available_from) if available_from is not None else None
        end = utc(available_until) if available_until is not None else None
    except ValueError as error:
        raise ValidationFailed.field("available_from", "invalid", str(error)) from None
    if start is not None and end is not None and start >= end:
        raise ValidationFailed.field("available_until", "invalid", "available_until must be after available_from")
    return {"available_from": start, "available_until": end}


def _by_creation(reward: Reward) -> tuple[Any, ...]:
    return (reward.created_at.isoformat(), reward.id)


def _by_name(reward: Reward) -> tuple[Any, ...]:
    return (reward.name.casefold(), reward.id)


def _count_key(reward_id: str, participant_id: str) -> bytes:
    return reward_id.encode() + b"\0" + participant_id.encode()


def _reward_op(reward: Reward) -> Op:
    assert reward.redeemed_count >= 0
    return ("rewards", reward.id.encode(), encode(reward))
