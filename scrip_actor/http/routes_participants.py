"""``/v1/participants``: records (upsert on ``external_id``), status, balances and lots."""

from __future__ import annotations

from typing import Any

from scrip_actor.http.routing import Call, Endpoint, Reply, listing, page_of, whole
from scrip_actor.http.schemas import BalanceQuery, ListOf, LotQuery, ParticipantQuery, StatusChange
from scrip_actor.model import (
    AdjustResult,
    Balance,
    BalanceAdjust,
    BalanceOperation,
    BalanceOperationResult,
    Lot,
    Participant,
    ParticipantCreate,
    ParticipantUpdate,
)

__all__ = ["ENDPOINTS"]

_ONE = "/v1/participants/{participant_id}"


async def upsert_participant(call: Call) -> Reply:
    """Create a participant (201) or update the one with this ``external_id`` (200)."""
    participant, created = await call.engine.create_participant(call.body)
    return Reply(201 if created else 200, participant)


async def list_participants(call: Call) -> ListOf[Any]:
    """Participants; ``external_id`` is an exact match and still answers a list."""
    query: ParticipantQuery = call.query
    return listing(
        await call.engine.list_participants(
            external_id=query.external_id,
            program_id=query.program_id,
            status=query.status,
            limit=query.limit,
            cursor=query.cursor,
        )
    )


async def get_participant(call: Call) -> Participant:
    """One participant with balances, tags, counters, attributes and program ids."""
    return await call.engine.get_participant(call.path["participant_id"])


async def update_participant(call: Call) -> Participant:
    """Profile fields (``""`` clears one), attributes merged, tags replaced; never the status."""
    return await call.engine.update_participant(call.path["participant_id"], call.body)


async def set_participant_status(call: Call) -> Participant:
    """ACTIVE, SUSPENDED or CLOSED; SUSPENDED and CLOSED participants earn and spend nothing."""
    body: StatusChange = call.body
    return await call.engine.set_participant_status(call.path["participant_id"], body.status)


async def participant_balances(call: Call) -> ListOf[Balance]:
    """Balances per asset: available, held, deferred (decimal strings at the asset's scale)."""
    query: BalanceQuery = call.query
    return whole(await call.engine.balances(call.path["participant_id"], query.asset_id))


async def participant_lots(call: Call) -> ListOf[Lot]:
    """Lots of one LOT asset, oldest first (spending order), with their status."""
    query: LotQuery = call.query
    lots = await call.engine.lots(
        call.path["participant_id"],
        query.asset_id,
        status=query.status,
        program_id=query.program_id,
        reference_id=query.reference_id,
        expires_before=query.expires_before,
        expires_after=query.expires_after,
    )
    return page_of(
        lots, query.limit, query.cursor, key=lambda lot: (lot.created_at.isoformat(), lot.number), shape=tuple[str, int]
    )


async def adjust_balance(call: Call) -> AdjustResult:
    """An operator's CREDIT or DEBIT of one bucket, answered once durable (journal action type ADJUST)."""
    return await call.engine.adjust_balance(call.path["participant_id"], call.body)


def _operation(operation: str) -> Any:
    async def run(call: Call) -> BalanceOperationResult:
        return await call.engine.balance_operation(operation, call.path["participant_id"], call.body)

    run.__name__ = run.__qualname__ = f"{operation.lower()}_balance"
    run.__doc__ = _OPERATION_DOCS[operation]
    return run


_OPERATION_DOCS = {
    "HOLD": "AVAILABLE -> HELD (amount omitted: everything the selection holds); LOT lots keep their dates.",
    "RELEASE": "HELD -> AVAILABLE; with reference_id, only lots that reference stamped.",
    "FORFEIT": "AVAILABLE or HELD (bucket, required) -> SYSTEM_BREAKAGE, for good; allowed on CLOSED participants.",
    "VOID_HOLD": "Provisional HELD lots of a reference back to their source (LOT only); allowed on CLOSED ones.",
}
_OPERATION_PATHS = {"HOLD": "hold", "RELEASE": "release", "FORFEIT": "forfeit", "VOID_HOLD": "void-hold"}


ENDPOINTS = [
    Endpoint(
        "POST",
        "/v1/participants",
        upsert_participant,
        "Create or update a participant (upsert)",
        "Participants",
        body=ParticipantCreate,
        response=Participant,
        status=201,
        also=(200,),
    ),
    Endpoint(
        "GET",
        "/v1/participants",
        list_participants,
        "List participants",
        "Participants",
        query=ParticipantQuery,
        response=ListOf[Participant],
    ),
    Endpoint("GET", _ONE, get_participant, "Get a participant", "Participants", response=Participant),
    Endpoint(
        "PATCH",
        _ONE,
        update_participant,
        "Update a participant's profile, tags, attributes",
        "Participants",
        body=ParticipantUpdate,
        response=Participant,
    ),
    Endpoint(
        "PATCH",
        _ONE + "/status",
        set_participant_status,
        "Change a participant's status",
        "Participants",
        body=StatusChange,
        response=Participant,
    ),
    Endpoint(
        "GET",
        _ONE + "/balances",
        participant_balances,
        "A participant's balances",
        "Participants",
        query=BalanceQuery,
        response=ListOf[Balance],
    ),
    Endpoint(
        "GET",
        _ONE + "/balances/lots",
        participant_lots,
        "A participant's lots of a LOT asset",
        "Participants",
        query=LotQuery,
        response=ListOf[Lot],
    ),
    Endpoint(
        "POST",
        _ONE + "/balances/adjust",
        adjust_balance,
        "Adjust a participant's balance (CREDIT or DEBIT of one bucket)",
        "Balances",
        body=BalanceAdjust,
        response=AdjustResult,
    ),
    *(
        Endpoint(
            "POST",
            f"{_ONE}/balances/{path}",
            _operation(operation),
            f"{path.replace('-', ' ').capitalize()} a participant's value",
            "Balances",
            body=BalanceOperation,
            response=BalanceOperationResult,
        )
        for operation, path in _OPERATION_PATHS.items()
    ),
]
