"""A participant's state writes through the front: ``PUT``/``PATCH``/``DELETE /v1/participants/{id}/state/...``,
``PATCH /v1/participants/{id}`` (profile) and ``…/status``, a tier set by hand (``PUT``/``DELETE
…/state/tiers/{key}?program_id=``), and the upsert ``POST /v1/participants``.

Tags, attributes and counters are a participant's own, so they go where its balance operations go
(``_front_operations.py``): each write is judged by the embedded view (API key, body limits, the embedded route's
body type: the same 400s), produced as a ``scrip-kind: operation`` record (a
:class:`~._operation_records.ParticipantOperation` carrying a :class:`~._operation_records.StateWrite`) to the
partition the participant id names, and applied there in turn with the participant's events, by the embedded
engine's own edit (:func:`scrip_actor.engine.run_state_write`). The log offset and the embedded route's reply (its
status and body: 201 for a new tag, 204 for a delete) are written in the edit's own LMDB record, so a replay or a
restart applies it once. The front waits for that reply as for a balance operation's, and answers 202 with the
record's receipt if it does not come in time.

A state write has no idempotency key (nor has the embedded route): a PUT or a DELETE sent again is applied again,
to the same end. A profile update may not change ``external_id``: a participant's events are routed by it, so a new
one would send them to another partition (a 400 ``immutable``, kept by the partition).

The upsert goes to the partition its ``external_id`` routes to (as that participant's events do) with a new
participant id of that partition chosen by the front (``{partition:08x}`` and random digits; in the record, so a
replay makes the same id); a participant that exists keeps its own id, and the answer is the embedded 201 or 200.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgspec

from scrip_actor.engine import Engine, run_participant_upsert, run_state_write
from scrip_actor.errors import ValidationFailed
from scrip_actor.http.routes_state import counter_item
from scrip_actor.http.routes_tiers import TierStateQuery
from scrip_actor.http.routing import Call, Endpoint, Reply
from scrip_actor.http.schemas import (
    AttributeItem,
    AttributeMap,
    AttributeSet,
    AttributesMerge,
    CounterItem,
    CounterSet,
    StatusChange,
    TagItem,
    TagList,
    TagsReplace,
)
from scrip_actor.model import Participant, ParticipantCreate, ParticipantUpdate
from scrip_actor.partitioned._front_operations import OPERATION_WAIT_S, participant_partition, produce_and_answer
from scrip_actor.partitioned._operation_records import UPSERT, ParticipantOperation, StateWrite, StateWriteName
from scrip_actor.partitioned._outcomes import reply_op
from scrip_actor.partitioned._routing import partition_for
from scrip_actor.store import Op
from scrip_actor.tiers import TierState, TierStateSet
from scrip_actor.values import external_id as canonical_external_id

if TYPE_CHECKING:
    from scrip_actor.partitioned._front import EventLog
    from scrip_actor.partitioned._front_reads import PartitionReaders

__all__ = ["state_write_endpoints", "write_state"]

_encoder = msgspec.json.Encoder()
_EXTERNAL_ID_MAX = 255  # as the front's events (_front.py)
_STATE = "/v1/participants/{participant_id}/state"
_TAG = _STATE + "/tags/{tag}"
_ATTRIBUTE = _STATE + "/attributes/{key}"
_COUNTER = _STATE + "/counters/{key}"
_TIER = _STATE + "/tiers/{key}"


class _Route(msgspec.Struct, frozen=True):
    """One embedded state route as the front serves it: how its path and body become the record's StateWrite."""

    method: str
    path: str
    write: StateWriteName
    body: Any
    arguments: Callable[[Call], StateWrite]
    response: Any
    status: int = 200
    also: tuple[int, ...] = ()
    query: Any = None


_ROUTES = (
    _Route("PUT", _STATE + "/tags", "TAGS_REPLACE", TagsReplace, lambda c: StateWrite(tags=c.body.tags), TagList),
    _Route("PUT", _TAG, "TAG_ADD", None, lambda c: StateWrite(key=c.path["tag"]), TagItem, status=201, also=(200,)),
    _Route("DELETE", _TAG, "TAG_REMOVE", None, lambda c: StateWrite(key=c.path["tag"]), None, status=204),
    _Route(
        "PATCH",
        _STATE + "/attributes",
        "ATTRIBUTES_MERGE",
        AttributesMerge,
        lambda c: StateWrite(attributes=c.body.attributes),
        AttributeMap,
    ),
    _Route(
        "PUT",
        _ATTRIBUTE,
        "ATTRIBUTE_SET",
        AttributeSet,
        lambda c: StateWrite(key=c.path["key"], value=c.body.value),
        AttributeItem,
    ),
    _Route("DELETE", _ATTRIBUTE, "ATTRIBUTE_DELETE", None, lambda c: StateWrite(key=c.path["key"]), None, status=204),
    _Route(
        "PUT",
        _COUNTER,
        "COUNTER_SET",
        CounterSet,
        lambda c: StateWrite(key=c.path["key"], value=c.body.value, reset_after=c.body.reset_after),
        CounterItem,
    ),
    _Route("DELETE", _COUNTER, "COUNTER_DELETE", None, lambda c: StateWrite(key=c.path["key"]), None, status=204),
    _Route(
        "PATCH",
        "/v1/participants/{participant_id}",
        "PROFILE_UPDATE",
        ParticipantUpdate,
        lambda c: StateWrite(profile=c.body),
        Participant,
    ),
    _Route(
        "PATCH",
        "/v1/participants/{participant_id}/status",
        "STATUS_SET",
        StatusChange,
        lambda c: StateWrite(value=c.body.status),
        Participant,
    ),
    _Route(
        "PUT",
        _TIER,
        "TIER_SET",
        TierStateSet,
        lambda c: StateWrite(key=c.path["key"], program_id=c.query.program_id, tier=c.body),
        TierState,
        query=TierStateQuery,
    ),
    _Route(
        "DELETE",
        _TIER,
        "TIER_DELETE",
        None,
        lambda c: StateWrite(key=c.path["key"], program_id=c.query.program_id),
        None,
        status=204,
        query=TierStateQuery,
    ),
)


def state_write_endpoints(
    log: EventLog, readers: PartitionReaders | None, wait_s: float = OPERATION_WAIT_S
) -> list[Endpoint]:
    """The front's state-write routes and its upsert (the embedded ones' methods, paths and bodies)."""
    return [*(_endpoint(log, readers, route, wait_s) for route in _ROUTES), _upsert_endpoint(log, readers, wait_s)]


def _endpoint(log: EventLog, readers: PartitionReaders | None, route: _Route, wait_s: float) -> Endpoint:
    async def write_participant_state(call: Call) -> Reply:
        participant_id = call.path["participant_id"]
        partition = participant_partition(log, participant_id)
        command = ParticipantOperation(
            operation=route.write, participant_id=participant_id, state=route.arguments(call)
        )
        return await produce_and_answer(log, readers, command, participant_id, partition, wait_s)

    write_participant_state.__name__ = f"front_{route.write.lower()}"  # the route's name: one per write
    return Endpoint(
        route.method,
        route.path,
        write_participant_state,
        f"{route.write} at the participant's partition (the embedded answer once applied, else 202 with its receipt)",
        "Participant state",
        body=route.body,
        query=route.query,
        response=route.response,
        status=route.status,
        also=(*route.also, 202),
    )


def _upsert_endpoint(log: EventLog, readers: PartitionReaders | None, wait_s: float) -> Endpoint:
    async def upsert_participant(call: Call) -> Reply:
        body: ParticipantCreate = call.body
        external_id = canonical_external_id(body.external_id, _EXTERNAL_ID_MAX)
        partition = partition_for(external_id, log.partitions)
        participant_id = f"{partition:08x}" + str(uuid.uuid4())[8:]  # an id naming its partition, if it is new
        command = ParticipantOperation(operation=UPSERT, participant_id=participant_id, state=StateWrite(create=body))
        return await produce_and_answer(log, readers, command, external_id, partition, wait_s)

    upsert_participant.__name__ = "front_participant_upsert"
    return Endpoint(
        "POST",
        "/v1/participants",
        upsert_participant,
        "Upsert a participant at the partition its external_id routes to (the embedded answer, else 202)",
        "Participants",
        body=ParticipantCreate,
        response=Participant,
        status=201,
        also=(200, 202),
    )


async def write_state(engine: Engine, log: str, offset: int, command: ParticipantOperation, ops: list[Op]) -> None:
    """Apply a state write read at ``offset`` of ``log`` (the partition's applier calls this): ``ops`` (its
    position, or its release from parking) and the embedded route's reply join the edit's own record. Raises the
    embedded edit's ScripError when refused (nothing written then)."""
    state = command.state
    assert state is not None, command
    assert not command.is_balance, command
    if state.create is not None:
        assert command.operation == UPSERT, command

        def upsert_ops(participant: Participant, created: bool) -> list[Op]:
            return [*ops, reply_op(log, offset, 201 if created else 200, participant)]

        await run_participant_upsert(engine, state.create, command.participant_id, record_ops=upsert_ops)
        return
    existed = False
    if command.operation == "TAG_ADD":  # 200 for a tag already there, 201 for a new one, as the embedded route
        assert state.key is not None
        before = await engine.get_participant(command.participant_id)
        existed = state.key.lower() in before.tags
    if state.profile is not None and state.profile.external_id is not None:
        await _refuse_a_rename(engine, command.participant_id, state.profile.external_id)

    def record_ops(answer: Any) -> list[Op]:
        http_status, body = _reply(command.operation, state, answer, existed)
        return [*ops, reply_op(log, offset, http_status, body)]

    arguments = msgspec.structs.asdict(state)
    await run_state_write(engine, command.operation, command.participant_id, arguments, record_ops=record_ops)


async def _refuse_a_rename(engine: Engine, participant_id: str, external_id: str) -> None:
    """Refuse a profile update that changes the participant's external id (its events' routing key)."""
    current = (await engine.get_participant(participant_id)).external_id
    if canonical_external_id(external_id, 4096, "external_id") != current:
        raise ValidationFailed.field(
            "external_id",
            "immutable",
            "in partitioned mode a participant's external_id cannot change: its events are routed by it",
        )


def _reply(write: str, state: StateWrite, answer: Any, existed: bool) -> tuple[int, Any]:
    """The embedded route's status and body for ``write`` once applied (scrip_actor/http/routes_state.py,
    routes_participants.py, routes_tiers.py), given the engine's answer: the participant, or a TierState."""
    participant: Participant = answer
    if write == "TAGS_REPLACE":
        return 200, TagList(tags=participant.tags)
    if write == "TAG_ADD":
        assert state.key is not None
        return (200 if existed else 201), TagItem(tag=state.key.lower())
    if write == "ATTRIBUTES_MERGE":
        return 200, AttributeMap(attributes=participant.attributes)
    if write == "ATTRIBUTE_SET":
        assert state.key is not None
        assert state.value is not None
        return 200, AttributeItem(key=state.key, value=state.value)
    if write == "COUNTER_SET":
        assert state.key is not None
        return 200, counter_item(participant, state.key)
    if write in ("PROFILE_UPDATE", "STATUS_SET", "TIER_SET"):
        return 200, answer
    assert write in ("TAG_REMOVE", "ATTRIBUTE_DELETE", "COUNTER_DELETE", "TIER_DELETE"), write
    return 204, None
