"""Group membership: each participant's events are applied once and in order while partitions move between engines.

Real broker (Tansu, classic group protocol, cooperative-sticky), real engine processes
(``scrip serve --role engine --group``), real LMDB. Engine A owns every partition; engine B joins (the partitions
split: A closes what it gives up before B opens it); A is SIGKILLed (B takes everything once A's session times
out, resuming each store at the offset A stored last). Events are produced before, during and after each move.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
import trio

from scrip_actor.partitioned import _kafka
from tests.partitioned.partition_setup import (
    TOPIC,
    GroupEngine,
    applied_balances,
    assert_applied_in_order,
    produce,
    seed_partitions,
    settle,
    start_engine,
)

PARTITIONS = 2
PARTICIPANTS = 17
EVENTS_PER_PHASE = 1000
GROUP = "engines"


async def _produce(broker: str, program_id: str, phase: int, ends: list[int]) -> None:
    numbers = list(range(phase * EVENTS_PER_PHASE, (phase + 1) * EVENTS_PER_PHASE))
    _acked, phase_ends = await trio.to_thread.run_sync(produce, broker, program_id, numbers, PARTICIPANTS, PARTITIONS)
    ends[:] = [max(old, new) for old, new in zip(ends, phase_ends, strict=True)]


async def test_each_participants_events_are_applied_once_in_order_across_rebalances(
    broker: str, tmp_path: Path
) -> None:
    await _rebalance_run(broker, tmp_path, "cooperative-sticky")


@pytest.mark.slow  # the claims' own ordering across a kill is in the default suite (the 409 test's third case)
async def test_the_same_holds_with_idempotency_claims_across_partitions(broker: str, tmp_path: Path) -> None:
    """Claims on: events wait, parked, for their key's partition, which may be moving or dead at the time."""
    await _rebalance_run(broker, tmp_path, "cooperative-sticky", scope="program")


@pytest.mark.slow
async def test_the_same_holds_with_an_eager_assignment_strategy(broker: str, tmp_path: Path) -> None:
    """``roundrobin`` revokes every partition on each rebalance, then reassigns: stores close and reopen."""
    await _rebalance_run(broker, tmp_path, "roundrobin")


def _first_offsets(lines: list[str], what: str) -> dict[int, int]:
    """Partition -> offset of the first ``what`` line (ASSIGNED: resumed at; REVOKED: closed at) of an engine."""
    first: dict[int, int] = {}
    for line in lines:
        kind, *rest = line.split()
        if kind == what:
            first.setdefault(int(rest[0]), int(rest[1]))
    return first


async def _rebalance_run(broker: str, tmp_path: Path, strategy: str, scope: str = "participant") -> None:
    partitions_dir, program_id, asset_id = await seed_partitions(tmp_path, PARTITIONS)
    _kafka.create_topic(broker, TOPIC, PARTITIONS)
    ends = [0] * PARTITIONS
    await _produce(broker, program_id, 0, ends)

    first = GroupEngine(broker, partitions_dir, GROUP, strategy=strategy, scope=scope)
    second: GroupEngine | None = None
    try:
        assert await trio.to_thread.run_sync(first.wait_owning, PARTITIONS, 20.0) == set(range(PARTITIONS))
        await _produce(broker, program_id, 1, ends)
        second = GroupEngine(broker, partitions_dir, GROUP, strategy=strategy, scope=scope)
        await _produce(broker, program_id, 2, ends)  # while the group rebalances
        split = await trio.to_thread.run_sync(second.wait_owning, PARTITIONS // 2, 30.0)
        assert await trio.to_thread.run_sync(first.wait_owning, PARTITIONS - len(split), 5.0) == (
            set(range(PARTITIONS)) - split
        )
        await _produce(broker, program_id, 3, ends)
        first.stop(signal.SIGKILL)  # no revocation: its partitions move when its session times out
        await _produce(broker, program_id, 4, ends)
        assert await trio.to_thread.run_sync(second.wait_owning, PARTITIONS, 30.0) == set(range(PARTITIONS))
        await _produce(broker, program_id, 5, ends)
        await trio.sleep(0.5)
        second.stop(signal.SIGTERM)  # leaves the group cleanly: every store closed after its events are processed
    finally:
        for engine in (first, second):
            if engine is not None:
                engine.stop(signal.SIGKILL)
    assert second.process.returncode == 0, second.lines
    # The hand-over is exact: B first opens each partition A gave up where A stored it last (cooperative: only the
    # partitions that moved; eager: all of them, A reopening the ones it keeps).
    resumed = _first_offsets(second.lines, "ASSIGNED")
    handed = _first_offsets(first.lines, "REVOKED")
    assert split <= set(handed) and all(resumed[n] == handed[n] for n in split), (first.lines, second.lines)
    assert all(offset > 0 for offset in resumed.values()), "A had applied part of every partition before it moved"
    assert {line.split()[1] for line in second.lines if line.startswith("REVOKED")} == {"0", "1"}

    # Whatever the last owner had not reached yet, a catch-up run applies (resuming at the stored offset); with
    # claims, rounds of them, as the partitions answer each other.
    left_at = _first_offsets(list(reversed(second.lines)), "REVOKED")  # where B closed each store last
    if scope == "program":
        await settle(broker, partitions_dir, TOPIC, PARTITIONS)
    for partition in range(PARTITIONS if scope == "participant" else 0):
        if left_at[partition] < ends[partition]:
            catch_up = start_engine(broker, partitions_dir, partition, ends[partition])
            output = catch_up.communicate(timeout=60)[0]
            assert f"DONE {ends[partition]}" in output, output

    events = 6 * EVENTS_PER_PHASE
    assert sum(ends) == events or scope == "program"  # with claims, the logs also hold requests and answers
    applied, events_stored = await applied_balances(partitions_dir, PARTITIONS, asset_id)
    assert events_stored == events  # none applied twice, none lost
    assert sum(applied.values()) == events
    assert await assert_applied_in_order(partitions_dir, PARTITIONS) == events
