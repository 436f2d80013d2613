"""Ids minted by partition n's store name partition n; catalog ids stay those of the seeded catalog.

Partition stores are seeded by copying one template, so without a per-partition id prefix two partitions would
mint the same event ids. The engine role claims the partition's prefix before it opens the store; a store that
already minted ids under another prefix is refused, never silently re-prefixed. Real Tansu, real LMDB.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest
import trio

from scrip_actor import open_engine
from scrip_actor.partitioned import _kafka, partition_data_dir, run_partition
from scrip_actor.partitioned._partition_ids import ForeignIdPrefix, partition_of
from tests.partitioned.partition_setup import TOPIC, config_for, produce, seed_partitions

PARTITIONS = 2
_SCOPE = "participant"  # partitions applied one after another: no claim to wait for (_claiming.py)


async def test_each_partitions_ids_decode_to_it(broker: str, tmp_path: Path) -> None:
    partitions_dir, program_id, asset_id = await seed_partitions(tmp_path, PARTITIONS)
    _kafka.create_topic(broker, TOPIC, PARTITIONS)
    _, ends = produce(broker, program_id, list(range(40)), participants=7, partitions=PARTITIONS)
    assert all(ends), "both partitions got events"
    seen_ids: set[str] = set()
    for partition in range(PARTITIONS):
        config = config_for(partition_data_dir(partitions_dir, partition))
        await run_partition(config, broker, TOPIC, partition, until_offset=ends[partition], idempotency_scope=_SCOPE)
        async with open_engine(config=config) as engine:
            events = (await engine.list_events(limit=200)).data
            participants = (await engine.list_participants(limit=200)).data
            entries = (await engine.list_journal_entries(limit=200)).data
            assert [p.id for p in (await engine.list_programs()).data] == [program_id]
            assert (await engine.get_asset(asset_id)).id == asset_id  # the catalog is the template's, unchanged
        assert len(events) == ends[partition] and participants and len(entries) == len(events)
        minted = [e.id for e in events] + [p.id for p in participants] + [j.id for j in entries]
        assert {partition_of(identifier) for identifier in minted} == {partition}
        assert seen_ids.isdisjoint(minted)
        seen_ids.update(minted)


async def test_a_store_with_another_partitions_ids_is_refused(broker: str, tmp_path: Path) -> None:
    partitions_dir, program_id, _ = await seed_partitions(tmp_path, PARTITIONS)
    _kafka.create_topic(broker, TOPIC, PARTITIONS)
    _, ends = produce(broker, program_id, list(range(20)), participants=7, partitions=PARTITIONS)
    source, target = (0, 1) if ends[0] else (1, 0)
    applied = partition_data_dir(partitions_dir, source)
    await run_partition(config_for(applied), broker, TOPIC, source, until_offset=ends[source], idempotency_scope=_SCOPE)
    misplaced = partition_data_dir(partitions_dir, target)
    shutil.rmtree(misplaced)
    shutil.copytree(applied, misplaced)  # the source partition's store, events and all, where the target's belongs
    with pytest.raises(ForeignIdPrefix, match="partition ids can only be set on a store with no events yet"):
        await run_partition(
            config_for(misplaced), broker, TOPIC, target, until_offset=ends[target], idempotency_scope=_SCOPE
        )
    command = [sys.executable, "-m", "scrip_actor", "serve", "--role", "engine", "--bootstrap", broker, "--topic"]
    command += [TOPIC, "--partition", str(target), "--partitions-dir", str(partitions_dir), "--until-offset", "1"]
    command += ["--idempotency-scope", _SCOPE]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    refused = await trio.run_process(command, capture_stdout=True, capture_stderr=True, env=env, check=False)
    stderr = refused.stderr.decode()
    assert refused.returncode == 2 and "partition ids can only be set" in stderr, stderr
    async with open_engine(config=config_for(misplaced)) as engine:  # left as it was: still the source's ids
        events = (await engine.list_events(limit=200)).data
    assert len(events) == ends[source] and {partition_of(e.id) for e in events} == {source}
