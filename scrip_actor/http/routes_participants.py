"""``/v1/participants``: records (upsert on ``external_id``), status, balances and lots."""

from __future__ import annotations

from typing import Any

import msgspec

from scrip_actor.http.hosted import ActivityItem, EventRecord, ParticipantItem, activity_item, participant_item
from scrip_actor.http.routes_events import event_records
from scrip_actor.http.routing import Call, Endpoint, Reply, listing, page_of
from scrip_actor.http.schemas import (
    ActivityQuery,
    BalanceQuery,
    ListOf,
    LotQuery,
    ParticipantEventQuery,
    ParticipantQuery,
    StatusChange,
)
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


def _by_asset(balance: Any) -> tuple[bytes]:
    """A balance's page key: its asset id (bytes, so a cursor of any other shape is refused)."""
    return (balance.asset_id.encode(),)


_ONE = "/v1/participants/{participant_id}"


async def upsert_participant(call: Call) -> Reply:
    """Create a participant (201) or update the one with this ``external_id`` (200)."""
    participant, created = await call.engine.create_participant(call.body)
    return Reply(201 if created else 200, participant)


async def list_participants(call: Call) -> ListOf[ParticipantItem]:
    """Participants, newest first, in the slim list shape (``GET .../{id}`` has balances, tags, counters...);
    ``external_id`` is an exact match and still answers a list."""
    query: ParticipantQuery = call.query
    page = await call.engine.list_participants(
        external_id=query.external_id,
        program_id=query.program_id,
        status=query.status,
        search=query.search,
        created_from=query.created_from,
        created_to=query.created_to,
        descending=query.sort_dir == "desc",
        limit=query.limit,
        cursor=query.cursor,
    )
    return listing(msgspec.structs.replace(page, data=[participant_item(p) for p in page.data]))


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
    """Balances per asset: available, held, deferred (decimal strings at the asset's scale), in asset id order."""
    query: BalanceQuery = call.query
    balances = await call.engine.balances(call.path["participant_id"], query.asset_id)
    return page_of(balances, query.limit, query.cursor, key=_by_asset, shape=tuple[bytes])


async def activity_history(call: Call) -> ListOf[ActivityItem]:
    """The participant's balance operations, oldest first: one per posting of theirs in the journal."""
    query: ActivityQuery = call.query
    participant_id = call.path["participant_id"]
    page = await call.engine.activity.history(
        participant_id,
        asset_id=query.asset_id,
        bucket=query.bucket,
        created_from=query.created_from,
        created_to=query.created_to,
        event_from=query.event_from,
        event_to=query.event_to,
        limit=query.limit,
        cursor=query.cursor,
    )
    symbols: dict[str, str] = {}
    items = []
    for entry, posting, event_at in page.data:
        if posting.asset_id not in symbols:
            symbols[posting.asset_id] = (await call.engine.get_asset(posting.asset_id)).symbol
        items.append(activity_item(entry, posting, event_at, symbols))
    return listing(msgspec.structs.replace(page, data=items))


async def participant_events(call: Call) -> ListOf[EventRecord]:
    """The participant's events, newest first, in the shape of ``GET /v1/events``."""
    query: ParticipantEventQuery = call.query
    page = await call.engine.activity.events(
        call.path["participant_id"],
        program_id=query.program_id,
        status=query.status,
        created_from=query.created_from,
        created_to=query.created_to,
        event_from=query.event_from,
        event_to=query.event_to,
        limit=query.limit,
        cursor=query.cursor,
    )
    return event_records(page)


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
        response=ListOf[ParticipantItem],
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
        _ONE + "/activity/history",
        activity_history,
        "A participant's balance operations (oldest first)",
        "Participants",
        query=ActivityQuery,
        response=ListOf[ActivityItem],
    ),
    Endpoint(
        "GET",
        _ONE + "/events",
        participant_events,
        "A participant's events",
        "Participants",
        query=ParticipantEventQuery,
        response=ListOf[EventRecord],
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
