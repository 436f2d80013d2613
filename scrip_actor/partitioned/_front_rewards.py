"""A program's reward catalog through the front: ``GET /v1/programs/{program_id}/rewards[/{reward_id}]``.

The catalog is the same on every partition (each is seeded with it), but what has been redeemed of a reward is
not: a catalog redemption runs at its participant's partition and counts there. So the front asks every
partition's reader the same request, concurrently (:func:`~._front_reports.ask_every_partition`: all of them or
none, a partition without a reader is a 503 naming it, the lowest-numbered refusal is the answer), and merges:

* ``redeemed_count`` is the sum of the partitions' counts (a unit is counted on the partition that sold it only);
* ``updated_at`` is the latest of the partitions' (each moves it when it counts a redemption);
* everything else, and a list's order and pagination, must be the same on every partition: they are the catalog.
  If they are not, the answer is a 502 ``partitions_disagree`` naming the reward and the field, never a guess.

The list's order, filters and cursors are the partitions' own (they do not depend on the counts), so the front
passes the query on unchanged and the next page is asked the same way.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING, Any

import msgspec

from scrip_actor.http.errors import PartitionsDisagree
from scrip_actor.partitioned._front_reports import ask_every_partition

if TYPE_CHECKING:
    from scrip_actor.partitioned._front_reads import PartitionReaders

__all__ = ["REWARDS", "merged_rewards"]

REWARDS = re.compile(r"programs/[^/]+/rewards(/[^/]+)?")
_MERGED = ("redeemed_count", "updated_at")  # the fields each partition has its own value of
_encoder = msgspec.json.Encoder()


async def merged_rewards(readers: PartitionReaders, rest: str, params: dict[str, str]) -> bytes:
    """The body of ``GET /v1/<rest>`` (a reward, or a page of them) merged over every partition (module doc)."""
    answers = await ask_every_partition(readers, f"/v1/{rest}", params)
    bodies = [answer.json() for answer in answers]
    if "data" not in bodies[0]:  # one reward
        return _encoder.encode(_merged(bodies))
    pages = [body["data"] for body in bodies]
    ids = [[reward["id"] for reward in page] for page in pages]
    if any(listed != ids[0] for listed in ids):
        raise _disagree("the list of rewards", ids)
    pagination = [body.get("pagination") for body in bodies]
    if any(page != pagination[0] for page in pagination):
        raise _disagree("pagination", pagination)
    merged = [_merged([page[index] for page in pages]) for index in range(len(pages[0]))]
    return _encoder.encode({**bodies[0], "data": merged})


def _merged(versions: list[dict[str, Any]]) -> dict[str, Any]:
    """One reward from every partition's version of it: counts added, the latest update, the rest the same."""
    first = versions[0]
    for name in first.keys() | {key for version in versions for key in version}:
        if name in _MERGED:
            continue
        values = [version.get(name) for version in versions]
        if any(value != values[0] for value in values):
            raise _disagree(f"reward {first.get('id')} {name}", values)
    counts = [version["redeemed_count"] for version in versions]
    if not all(type(count) is int and count >= 0 for count in counts):
        raise _disagree(f"reward {first.get('id')} redeemed_count", counts)
    updates = [datetime.fromisoformat(version["updated_at"]) for version in versions]
    latest = max(range(len(versions)), key=lambda index: updates[index])
    return {**first, "redeemed_count": sum(counts), "updated_at": versions[latest]["updated_at"]}


def _disagree(what: str, values: list[Any]) -> PartitionsDisagree:
    return PartitionsDisagree(
        f"the partitions do not agree on {what}, so their catalogs cannot be merged",
        {"field": what, "values": [str(value) for value in values]},  # per partition, in partition order
    )
