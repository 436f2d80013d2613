"""``/v1/participants/{id}/activity/state-history``: what changed a participant's tags, counters, attributes and
tiers, oldest first (scrip_actor/engine/_state_history.py keeps it)."""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import Meta, Struct, field

from scrip_actor.engine import StateHistoryFilter
from scrip_actor.http.routing import Call, Endpoint, ListOf, listing
from scrip_actor.http.schemas import AwareDatetime
from scrip_actor.model import StateChange, StateOperation, StateType

__all__ = ["ENDPOINTS"]


class StateHistoryQuery(Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """The hosted filters (``limit`` at most 100, as there) plus ``source`` (rule, api or lifecycle). ``from``/``to``
    bound when the change was made, ``event_from``/``event_to`` the causing event's time (when it was made, for a
    change no event made); from inclusive, to exclusive."""

    limit: Annotated[int, Meta(ge=1, le=100)] = 50
    cursor: str | None = None
    state_type: StateType | None = None
    key: Annotated[str, Meta(min_length=1, max_length=255)] | None = None
    program_id: str | None = None
    operation: StateOperation | None = None
    source: Literal["rule", "api", "lifecycle"] | None = None
    changed_from: AwareDatetime | None = field(default=None, name="from")
    changed_to: AwareDatetime | None = field(default=None, name="to")
    event_from: AwareDatetime | None = None
    event_to: AwareDatetime | None = None


async def state_history(call: Call) -> ListOf[StateChange]:
    """A participant's state changes, oldest first; 404 for an unknown participant."""
    query: StateHistoryQuery = call.query
    participant_id = call.path["participant_id"]
    await call.engine.get_participant(participant_id)
    keep = StateHistoryFilter(
        state_type=query.state_type,
        key=query.key,
        program_id=query.program_id,
        operation=query.operation,
        source=query.source,
        changed_from=query.changed_from,
        changed_to=query.changed_to,
        event_from=query.event_from,
        event_to=query.event_to,
    )
    return listing(
        call.engine.state_history.list_for(participant_id, limit=query.limit, cursor=query.cursor, keep=keep)
    )


ENDPOINTS = [
    Endpoint(
        "GET",
        "/v1/participants/{participant_id}/activity/state-history",
        state_history,
        "A participant's state history",
        "Participant state",
        query=StateHistoryQuery,
        response=ListOf[StateChange],
    ),
]
