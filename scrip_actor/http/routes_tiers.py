"""Tier definitions (``/v1/programs/{id}/tiers``) and a participant's tiers (``/v1/participants/{id}/state/tiers``).

Each handler decodes, makes one call on ``engine.tiers`` and encodes (scrip_actor/engine/_tiers.py, docs/tiers.md).
"""

from __future__ import annotations

from typing import Literal

from msgspec import Struct

from scrip_actor.http.routing import Call, Endpoint, ListOf, whole
from scrip_actor.http.schemas import DataOf
from scrip_actor.tiers import TierCreate, TierDefinition, TierState, TierStateSet, TierUpdate

__all__ = ["ENDPOINTS"]

_TIERS = "/v1/programs/{program_id}/tiers"
_ONE = _TIERS + "/{key}"
_STATE = "/v1/participants/{participant_id}/state/tiers"


class TierQuery(Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """``status``: only the tiers of that status (default: all, oldest first)."""

    status: Literal["ACTIVE", "ARCHIVED"] | None = None


class TierStateQuery(Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """The program whose tiers are meant (a participant may be enrolled in several)."""

    program_id: str


async def create_tier(call: Call) -> TierDefinition:
    """Define a tier with its levels (and optional lifecycle)."""
    tier: TierDefinition = await call.engine.tiers.create(call.path["program_id"], call.body)
    return tier


async def list_tiers(call: Call) -> ListOf[TierDefinition]:
    """The program's tiers, oldest first."""
    query: TierQuery = call.query
    tiers = call.engine.tiers.list(call.path["program_id"])
    return whole([tier for tier in tiers if query.status is None or tier.status == query.status])


async def get_tier(call: Call) -> TierDefinition:
    """One tier by key."""
    tier: TierDefinition = call.engine.tiers.get(call.path["program_id"], call.path["key"])
    return tier


async def update_tier(call: Call) -> TierDefinition:
    """Change a tier: display name, levels upserted by key, lifecycle (``{}`` clears)."""
    tier: TierDefinition = await call.engine.tiers.update(call.path["program_id"], call.path["key"], call.body)
    return tier


async def archive_tier(call: Call) -> TierDefinition:
    """Archive a tier for good (409 tier_archived if it already is)."""
    tier: TierDefinition = await call.engine.tiers.archive(call.path["program_id"], call.path["key"])
    return tier


async def list_states(call: Call) -> DataOf[TierState]:
    """The levels the participant holds in the program."""
    query: TierStateQuery = call.query
    return DataOf(data=call.engine.tiers.states(call.path["participant_id"], query.program_id))


async def get_state(call: Call) -> TierState:
    """The participant's level of one tier; 404 if it holds none."""
    query: TierStateQuery = call.query
    state: TierState = call.engine.tiers.state(call.path["participant_id"], query.program_id, call.path["key"])
    return state


async def set_state(call: Call) -> TierState:
    """Set the participant's level by hand, removed at ``expires_at`` if given."""
    query: TierStateQuery = call.query
    state: TierState = await call.engine.tiers.set_state(
        call.path["participant_id"], query.program_id, call.path["key"], call.body
    )
    return state


async def delete_state(call: Call) -> None:
    """Back to rank 0: 204 (also when no level was held)."""
    query: TierStateQuery = call.query
    await call.engine.tiers.delete_state(call.path["participant_id"], query.program_id, call.path["key"])


ENDPOINTS = [
    Endpoint(
        "POST", _TIERS, create_tier, "Define a tier", "Tiers", body=TierCreate, response=TierDefinition, status=201
    ),
    Endpoint("GET", _TIERS, list_tiers, "A program's tiers", "Tiers", query=TierQuery, response=ListOf[TierDefinition]),
    Endpoint("GET", _ONE, get_tier, "Get a tier", "Tiers", response=TierDefinition),
    Endpoint("PATCH", _ONE, update_tier, "Change a tier", "Tiers", body=TierUpdate, response=TierDefinition),
    Endpoint("POST", _ONE + "/archive", archive_tier, "Archive a tier", "Tiers", response=TierDefinition),
    Endpoint(
        "GET",
        _STATE,
        list_states,
        "A participant's tiers in a program",
        "Participant state",
        query=TierStateQuery,
        response=DataOf[TierState],
    ),
    Endpoint(
        "GET",
        _STATE + "/{key}",
        get_state,
        "A participant's level of a tier",
        "Participant state",
        query=TierStateQuery,
        response=TierState,
    ),
    Endpoint(
        "PUT",
        _STATE + "/{key}",
        set_state,
        "Set a participant's level by hand",
        "Participant state",
        query=TierStateQuery,
        body=TierStateSet,
        response=TierState,
    ),
    Endpoint(
        "DELETE",
        _STATE + "/{key}",
        delete_state,
        "Remove a participant's level",
        "Participant state",
        query=TierStateQuery,
        status=204,
    ),
]
