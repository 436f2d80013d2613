"""The reward catalog (``/v1/programs/{id}/rewards``), redemptions (``/v1/participants/{id}/redemptions``,
``…/redemptions/items``) and their reversals (``/v1/redemptions/{id}``)."""

from __future__ import annotations

from typing import Any, Literal

from msgspec import field

from scrip_actor.http.routing import Call, Endpoint, ListOf, Reply, listing, page_of
from scrip_actor.http.schemas import AwareDatetime, PageQuery
from scrip_actor.model import (
    ItemRedemptionCreate,
    Redemption,
    RedemptionCreate,
    Reversal,
    ReversalCreate,
    Reward,
    RewardCreate,
    RewardStatus,
    RewardUpdate,
    TransferCreate,
    TransferResult,
)

__all__ = ["ENDPOINTS"]

_PARTICIPANT = "/v1/participants/{participant_id}/redemptions"
_ONE = "/v1/redemptions/{redemption_id}"


class RedemptionQuery(PageQuery, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """Filters of a participant's redemptions (newest first)."""

    status: Literal["COMPLETED", "PARTIALLY_REVERSED", "FULLY_REVERSED"] | None = None
    reward_catalog_item_id: str | None = None
    created_from: AwareDatetime | None = field(default=None, name="from")
    created_to: AwareDatetime | None = field(default=None, name="to")


_REWARDS = "/v1/programs/{program_id}/rewards"


class RewardQuery(PageQuery, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """Filters and order of a program's catalog."""

    status: RewardStatus | None = None
    include_archived: bool = False
    search: str | None = None
    sort_by: Literal["created_at", "name"] = "created_at"
    sort_dir: Literal["asc", "desc"] = "desc"


async def create_reward(call: Call) -> Reward:
    """Add a reward to the program's catalog."""
    reward: Reward = await call.engine.rewards.create(call.path["program_id"], call.body)
    return reward


async def list_rewards(call: Call) -> ListOf[Any]:
    """The program's catalog (archived rewards only when asked for)."""
    query: RewardQuery = call.query
    return listing(
        call.engine.rewards.list(
            call.path["program_id"],
            status=query.status,
            include_archived=query.include_archived,
            search=query.search,
            sort_by=query.sort_by,
            sort_dir=query.sort_dir,
            limit=query.limit,
            cursor=query.cursor,
        )
    )


async def get_reward(call: Call) -> Reward:
    """One reward, with its redeemed count."""
    reward: Reward = call.engine.rewards.get(call.path["program_id"], call.path["reward_id"])
    return reward


async def update_reward(call: Call) -> Reward:
    """Change a reward (not its type or asset); status ARCHIVED archives it for good."""
    reward: Reward = await call.engine.rewards.update(call.path["program_id"], call.path["reward_id"], call.body)
    return reward


async def redeem_item(call: Call) -> Reply:
    """Redeem a catalog reward: 201, or 200 answering a replayed idempotency key."""
    redemption, created = await call.engine.redemptions.create_item(call.path["participant_id"], call.body)
    return Reply(201 if created else 200, redemption)


async def transfer(call: Call) -> Reply:
    """Move value from one participant to 1-100 others in one entry: 201, or 200 on a replayed key."""
    result, created = await call.engine.transfers.create(call.body)
    return Reply(201 if created else 200, result)


async def redeem(call: Call) -> Reply:
    """Spend an amount of AVAILABLE value (lots FIFO): 201, or 200 answering a replayed idempotency key."""
    redemption, created = await call.engine.redemptions.create(call.path["participant_id"], call.body)
    return Reply(201 if created else 200, redemption)


async def list_redemptions(call: Call) -> ListOf[Any]:
    """A participant's redemptions, newest first."""
    query: RedemptionQuery = call.query
    await call.engine.get_participant(call.path["participant_id"])  # 404 for an unknown participant
    return listing(
        call.engine.redemptions.list_for(
            call.path["participant_id"],
            limit=query.limit,
            cursor=query.cursor,
            status=query.status,
            reward_id=query.reward_catalog_item_id,
            created_from=query.created_from,
            created_to=query.created_to,
        )
    )


async def get_redemption(call: Call) -> Redemption:
    """One redemption, with what has been reversed of it."""
    redemption: Redemption = call.engine.redemptions.get(call.path["redemption_id"])
    return redemption


async def reverse(call: Call) -> Reply:
    """Give back all that is left of a redemption, or ``amount`` of it: 201, or 200 on a replayed key."""
    reversal, created = await call.engine.redemptions.reverse(call.path["redemption_id"], call.body)
    return Reply(201 if created else 200, reversal)


async def list_reversals(call: Call) -> ListOf[Reversal]:
    """A redemption's reversals, oldest first, paged."""
    query: PageQuery = call.query
    reversals = call.engine.redemptions.reversals(call.path["redemption_id"])
    return page_of(
        reversals, query.limit, query.cursor, key=lambda r: (r.created_at.isoformat(), r.id), shape=tuple[str, str]
    )


ENDPOINTS = [
    Endpoint(
        "POST",
        "/v1/transfers",
        transfer,
        "Transfer value between participants",
        "Transfers",
        body=TransferCreate,
        response=TransferResult,
        status=201,
        also=(200,),
    ),
    Endpoint(
        "POST",
        _REWARDS,
        create_reward,
        "Add a reward to the catalog",
        "Rewards",
        body=RewardCreate,
        response=Reward,
        status=201,
    ),
    Endpoint(
        "GET",
        _REWARDS,
        list_rewards,
        "A program's reward catalog",
        "Rewards",
        query=RewardQuery,
        response=ListOf[Reward],
    ),
    Endpoint("GET", _REWARDS + "/{reward_id}", get_reward, "Get a reward", "Rewards", response=Reward),
    Endpoint(
        "PATCH",
        _REWARDS + "/{reward_id}",
        update_reward,
        "Change a reward",
        "Rewards",
        body=RewardUpdate,
        response=Reward,
    ),
    Endpoint(
        "POST",
        _PARTICIPANT + "/items",
        redeem_item,
        "Redeem a catalog reward",
        "Redemptions",
        body=ItemRedemptionCreate,
        response=Redemption,
        status=201,
        also=(200,),
    ),
    Endpoint(
        "POST",
        _PARTICIPANT,
        redeem,
        "Redeem an amount of an asset",
        "Redemptions",
        body=RedemptionCreate,
        response=Redemption,
        status=201,
        also=(200,),
    ),
    Endpoint(
        "GET",
        _PARTICIPANT,
        list_redemptions,
        "A participant's redemptions",
        "Redemptions",
        query=RedemptionQuery,
        response=ListOf[Redemption],
    ),
    Endpoint("GET", _ONE, get_redemption, "Get a redemption", "Redemptions", response=Redemption),
    Endpoint(
        "POST",
        _ONE + "/reverse",
        reverse,
        "Reverse a redemption (all, or part of what is left)",
        "Redemptions",
        body=ReversalCreate,
        response=Reversal,
        status=201,
        also=(200,),
    ),
    Endpoint(
        "GET",
        _ONE + "/reversals",
        list_reversals,
        "A redemption's reversals",
        "Redemptions",
        query=PageQuery,
        response=ListOf[Reversal],
    ),
]
