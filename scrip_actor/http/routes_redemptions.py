"""Redemptions and their reversals: ``/v1/participants/{id}/redemptions`` and ``/v1/redemptions/{id}``."""

from __future__ import annotations

from typing import Any, Literal

from scrip_actor.http.routing import Call, Endpoint, ListOf, Reply, listing, whole
from scrip_actor.http.schemas import PageQuery
from scrip_actor.model import Redemption, RedemptionCreate, Reversal, ReversalCreate

__all__ = ["ENDPOINTS"]

_PARTICIPANT = "/v1/participants/{participant_id}/redemptions"
_ONE = "/v1/redemptions/{redemption_id}"


class RedemptionQuery(PageQuery, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """Filters of a participant's redemptions (newest first)."""

    status: Literal["COMPLETED", "PARTIALLY_REVERSED", "REVERSED"] | None = None


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
            call.path["participant_id"], limit=query.limit, cursor=query.cursor, status=query.status
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
    """A redemption's reversals, oldest first."""
    return whole(call.engine.redemptions.reversals(call.path["redemption_id"]))


ENDPOINTS = [
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
        "GET", _ONE + "/reversals", list_reversals, "A redemption's reversals", "Redemptions", response=ListOf[Reversal]
    ),
]
