"""The engine role applies every acknowledged record exactly once and in order, though SIGKILLed mid-partition.

Real broker (Tansu), real engine processes (``python -m scrip_actor.partitioned engine``), real LMDB.
"""

from __future__ import annotations

import signal
from pathlib import Path

import lmdb
import trio

from scrip_actor._data_dir import ENV_DIR_NAME
from scrip_actor.partitioned import _kafka, partition_data_dir
from tests.partitioned.partition_setup import (
    TOPIC,
    applied_balances,
    assert_applied_in_order,
    produce,
    seed_partitions,
    start_engine,
)

PARTITIONS = 2
EVENTS = 8000
PARTICIPANTS = 23
REPEATED = 200  # records produced twice (a front retrying after a lost answer): the second must change nothing


def _stored_offset(data_dir: Path) -> int:
    """The offset the running engine has committed, read beside it (LMDB readers never block its writer)."""
    env = lmdb.open(str(data_dir / ENV_DIR_NAME), readonly=True, max_dbs=64, lock=True, subdir=True)
    try:
        meta = env.open_db(b"meta", create=False)
        with env.begin() as txn:
            raw = txn.get(b"log_offset:" + f"{TOPIC}/0".encode(), db=meta)
        return 0 if raw is None else int.from_bytes(raw, "big")
    finally:
        env.close()


async def _first_commits(data_dir: Path) -> None:
    """Return once the engine has committed some records: kill it mid-partition, not before it starts (a fixed
    sleep is outlived by a fast run and undershot by a slow one)."""
    with trio.fail_after(30):
        while _stored_offset(data_dir) == 0:  # noqa: ASYNC110 (another process's store: no event to wait on)
            await trio.sleep(0.005)


async def test_every_acknowledged_event_is_applied_once_across_a_sigkill(broker: str, tmp_path: Path) -> None:
    partitions_dir, program_id, asset_id = await seed_partitions(tmp_path, PARTITIONS)
    _kafka.create_topic(broker, TOPIC, PARTITIONS)
    numbers = [*range(EVENTS), *range(REPEATED)]
    acked, ends = await trio.to_thread.run_sync(produce, broker, program_id, numbers, PARTICIPANTS, PARTITIONS)
    assert sum(ends) == EVENTS + REPEATED

    engines = [start_engine(broker, partitions_dir, partition, ends[partition]) for partition in range(PARTITIONS)]
    try:
        assert engines[0].stdout is not None
        assert engines[0].stdout.readline().startswith("READY 0")
        await _first_commits(partition_data_dir(partitions_dir, 0))  # it applied part of its partition: kill it
        engines[0].send_signal(signal.SIGKILL)
        engines[0].wait(timeout=10)
        engines[0].stdout.close()
        engines[0] = start_engine(broker, partitions_dir, 0, ends[0])  # resumes from the stored offset
        outputs = [engine.communicate(timeout=60)[0] for engine in engines]
    finally:
        for engine in engines:
            if engine.poll() is None:
                engine.kill()
                engine.wait()
    resumed_at = int(outputs[0].split()[1])  # the replacement's READY line: where the killed one had got to
    assert 0 < resumed_at < ends[0], f"the kill is meant to land mid-partition: {resumed_at} of {ends[0]}"
    for partition, output in enumerate(outputs):
        assert f"DONE {ends[partition]}" in output, output

    applied, events_stored = await applied_balances(partitions_dir, PARTITIONS, asset_id)
    assert events_stored == EVENTS  # the repeated records made no event of their own
    assert applied == dict(acked)  # balances equal the events: none lost, none applied twice
    # Per participant, in the order produced, across the kill and the replacement's resumption.
    assert await assert_applied_in_order(partitions_dir, PARTITIONS) == EVENTS
