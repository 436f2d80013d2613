"""A lone consumer-group member is assigned every partition and applies each to its own store, then exits.

Real broker (Tansu), a real ``scrip serve --role engine --group`` process, real LMDB. The member resumes each
store at the offset it holds (here 0), reads it through the group's assignment, and ``--until-offsets`` makes it
leave the group cleanly once every partition is applied: every store closed with nothing pending.
"""

from __future__ import annotations

import signal
from pathlib import Path

import trio

from scrip_actor.partitioned import _kafka
from tests.partitioned.partition_setup import (
    TOPIC,
    GroupEngine,
    applied_balances,
    assert_applied_in_order,
    produce,
    seed_partitions,
)

PARTITIONS = 3
EVENTS = 1200
PARTICIPANTS = 11


async def test_a_lone_member_applies_every_partition_once_and_in_order(broker: str, tmp_path: Path) -> None:
    partitions_dir, program_id, asset_id = await seed_partitions(tmp_path, PARTITIONS)
    _kafka.create_topic(broker, TOPIC, PARTITIONS)
    acked, ends = await trio.to_thread.run_sync(
        produce, broker, program_id, list(range(EVENTS)), PARTICIPANTS, PARTITIONS
    )
    member = GroupEngine(broker, partitions_dir, "lone", until_offsets=ends)
    try:
        await trio.to_thread.run_sync(lambda: member.process.wait(timeout=30))
    finally:
        member.stop(signal.SIGKILL)
    assert member.process.returncode == 0, member.lines
    assert sorted(line.split()[:3] for line in member.lines if line.startswith("ASSIGNED")) == [
        ["ASSIGNED", str(n), "0"] for n in range(PARTITIONS)
    ]
    closed = {int(line.split()[1]): int(line.split()[2]) for line in member.lines if line.startswith("REVOKED")}
    assert closed == dict(enumerate(ends))  # left the group with every partition applied to its end
    assert member.lines[-1].startswith("DONE")

    applied, events_stored = await applied_balances(partitions_dir, PARTITIONS, asset_id)
    assert events_stored == EVENTS
    assert applied == dict(acked)
    assert await assert_applied_in_order(partitions_dir, PARTITIONS) == EVENTS
