"""``/v1/participants/{id}/state``: tags, attributes and counters, one resource each.

Every write is one engine call that returns the participant once durable; the handler then answers the small
shape the reference documents (``{tag}``, ``{key, value}``, ...) rather than the whole participant.
"""

from __future__ import annotations

from scrip_actor.errors import NotFound
from scrip_actor.http.routing import Call, Endpoint, Reply
from scrip_actor.http.schemas import (
    AttributeItem,
    AttributeMap,
    AttributeSet,
    AttributesMerge,
    CounterItem,
    CounterSet,
    DataOf,
    TagItem,
    TagList,
    TagsReplace,
)
from scrip_actor.model import Participant

__all__ = ["ENDPOINTS", "counter_item"]

_STATE = "/v1/participants/{participant_id}/state"


async def list_tags(call: Call) -> DataOf[TagItem]:
    """All tags, sorted."""
    participant = await call.engine.get_participant(call.path["participant_id"])
    return DataOf(data=[TagItem(tag=tag) for tag in participant.tags])


async def replace_tags(call: Call) -> TagList:
    """Replace every tag (lowercased)."""
    body: TagsReplace = call.body
    participant = await call.engine.replace_tags(call.path["participant_id"], body.tags)
    return TagList(tags=participant.tags)


async def add_tag(call: Call) -> Reply:
    """Add one tag (lowercased): 201 when new, 200 when it was already there.

    Reading the tags first is safe: the engine's read and its in-memory change both happen before its first
    checkpoint, so no other request can add the same tag in between.
    """
    participant_id, tag = call.path["participant_id"], call.path["tag"].lower()
    before = await call.engine.get_participant(participant_id)
    await call.engine.add_tags(participant_id, [tag])
    return Reply(200 if tag in before.tags else 201, TagItem(tag=tag))


async def remove_tag(call: Call) -> None:
    """Remove one tag; absent is fine (204 either way)."""
    await call.engine.remove_tag(call.path["participant_id"], call.path["tag"])


async def list_attributes(call: Call) -> DataOf[AttributeItem]:
    """All attributes as ``{key, value}`` pairs."""
    participant = await call.engine.get_participant(call.path["participant_id"])
    return DataOf(data=[AttributeItem(key=key, value=value) for key, value in participant.attributes.items()])


async def merge_attributes(call: Call) -> AttributeMap:
    """Merge attributes into the existing ones; answers all attributes after the merge."""
    body: AttributesMerge = call.body
    participant = await call.engine.set_attributes(call.path["participant_id"], body.attributes)
    return AttributeMap(attributes=participant.attributes)


async def set_attribute(call: Call) -> AttributeItem:
    """Create or overwrite one attribute."""
    body: AttributeSet = call.body
    key = call.path["key"]
    await call.engine.set_attributes(call.path["participant_id"], {key: body.value})
    return AttributeItem(key=key, value=body.value)


async def delete_attribute(call: Call) -> None:
    """Remove one attribute; absent is fine (204 either way)."""
    await call.engine.delete_attribute(call.path["participant_id"], call.path["key"])


def counter_item(participant: Participant, key: str) -> CounterItem:
    """The counter ``key`` of ``participant`` as the counter routes answer it (also the front's state writes)."""
    reset = participant.counter_resets.get(key)
    return CounterItem(
        key=key,
        value=participant.counters[key],
        reset_after=None if reset is None else reset.reset_after,
        last_reset_at=None if reset is None else reset.last_reset_at,
    )


async def list_counters(call: Call) -> DataOf[CounterItem]:
    """All counters at their effective values (0 once a reset window has passed)."""
    participant = await call.engine.get_participant(call.path["participant_id"])
    return DataOf(data=[counter_item(participant, key) for key in participant.counters])


async def get_counter(call: Call) -> CounterItem:
    """One counter at its effective value; 404 if it was never set."""
    key = call.path["key"]
    participant = await call.engine.get_participant(call.path["participant_id"])
    if key not in participant.counters:
        raise NotFound("counter", key)
    return counter_item(participant, key)


async def set_counter(call: Call) -> CounterItem:
    """Set a counter to an exact decimal value, creating it; ``reset_after`` sets or (``""``) removes its window."""
    body: CounterSet = call.body
    key = call.path["key"]
    participant = await call.engine.set_counter(call.path["participant_id"], key, body.value, body.reset_after)
    return counter_item(participant, key)


async def delete_counter(call: Call) -> None:
    """Delete a counter permanently; absent is fine (204 either way)."""
    await call.engine.delete_counter(call.path["participant_id"], call.path["key"])


_TAG = _STATE + "/tags/{tag}"
_ATTRIBUTE = _STATE + "/attributes/{key}"
_COUNTER = _STATE + "/counters/{key}"

ENDPOINTS = [
    Endpoint("GET", _STATE + "/tags", list_tags, "List tags", "Participant state", response=DataOf[TagItem]),
    Endpoint(
        "PUT",
        _STATE + "/tags",
        replace_tags,
        "Replace all tags",
        "Participant state",
        body=TagsReplace,
        response=TagList,
    ),
    Endpoint("PUT", _TAG, add_tag, "Add a tag", "Participant state", response=TagItem, status=201, also=(200,)),
    Endpoint("DELETE", _TAG, remove_tag, "Remove a tag", "Participant state", status=204),
    Endpoint(
        "GET",
        _STATE + "/attributes",
        list_attributes,
        "List attributes",
        "Participant state",
        response=DataOf[AttributeItem],
    ),
    Endpoint(
        "PATCH",
        _STATE + "/attributes",
        merge_attributes,
        "Merge attributes",
        "Participant state",
        body=AttributesMerge,
        response=AttributeMap,
    ),
    Endpoint(
        "PUT",
        _ATTRIBUTE,
        set_attribute,
        "Set an attribute",
        "Participant state",
        body=AttributeSet,
        response=AttributeItem,
    ),
    Endpoint("DELETE", _ATTRIBUTE, delete_attribute, "Remove an attribute", "Participant state", status=204),
    Endpoint(
        "GET", _STATE + "/counters", list_counters, "List counters", "Participant state", response=DataOf[CounterItem]
    ),
    Endpoint("GET", _COUNTER, get_counter, "Get a counter", "Participant state", response=CounterItem),
    Endpoint("PUT", _COUNTER, set_counter, "Set a counter", "Participant state", body=CounterSet, response=CounterItem),
    Endpoint("DELETE", _COUNTER, delete_counter, "Delete a counter", "Participant state", status=204),
]
