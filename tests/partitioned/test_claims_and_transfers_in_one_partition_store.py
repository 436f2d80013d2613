"""Claims and parked transfers judged in one partition's store, record by record (no broker: the applier is fed
records as the engine role would read them; real LMDB, a real engine).

* An event whose release is held back by a real overload (a tiny in-flight bound) is admitted later *with* its
  key's claim, so another partition's request for that key is refused (the claim judged before the overload must
  not be taken as written).
* A transfer refused for an overdraft uses up no idempotency key: the corrected retry with the same key runs, as
  on one process where a refused operation stores nothing.
* A transfer to a recipient on the same partition whose creating event is parked waits behind it instead of
  finding nobody.
"""

from __future__ import annotations

from pathlib import Path

import msgspec

from scrip_actor import open_engine
from scrip_actor.config import Config, EngineSettings, StorageSettings
from scrip_actor.model import EventSubmit, TransferCreate, TransferRecipient
from scrip_actor.partitioned import partition_data_dir
from scrip_actor.partitioned._apply import PartitionApplier, log_outcome
from scrip_actor.partitioned._claiming import claim_partition_for
from scrip_actor.partitioned._claims import ClaimAnswer, ClaimRequest
from scrip_actor.partitioned._effects import Payload, encode_payload
from scrip_actor.partitioned._outbox import OutboxRecord
from scrip_actor.partitioned._routing import KIND_EFFECT, KIND_TRANSFER, partition_for
from tests.partitioned.partition_setup import seed_partitions

PARTITIONS = 2
HERE = 1  # the partition under test
LOG = "t/1"


def _on(partition: int, prefix: str) -> str:
    return next(f"{prefix}{n}" for n in range(10_000) if partition_for(f"{prefix}{n}", PARTITIONS) == partition)


def _key_on(program: str, partition: int, prefix: str) -> str:
    names = (f"{prefix}{n}" for n in range(10_000))
    return next(key for key in names if claim_partition_for(program, key, PARTITIONS) == partition)


def _event(program_id: str, external_id: str, key: str) -> bytes:
    body = EventSubmit(program_id=program_id, external_id=external_id, idempotency_key=key, event_data={})
    return msgspec.json.encode(body)


def _effect(origin_offset: int, payload: Payload) -> bytes:
    record = OutboxRecord(
        origin_partition=0,
        origin_offset=origin_offset,
        ordinal=0,
        destination_partition=HERE,
        payload=encode_payload(payload),
    )
    return msgspec.msgpack.encode(record)


def _config(partitions_dir: Path, inflight_events_max: int = 10_000) -> Config:
    data_dir = str(partition_data_dir(partitions_dir, HERE))
    return Config(
        storage=StorageSettings(data_dir=data_dir, sync=True, lmdb_map_size_bytes=1 << 30),
        engine=EngineSettings(inflight_events_max=inflight_events_max),
    )


async def test_an_event_released_after_an_overload_is_admitted_with_its_claim(tmp_path: Path) -> None:
    partitions_dir, program_id, _ = await seed_partitions(tmp_path, PARTITIONS)
    someone = _on(HERE, "x")
    asked_elsewhere, owned_here = _key_on(program_id, 0, "k"), _key_on(program_id, HERE, "j")
    async with open_engine(config=_config(partitions_dir, inflight_events_max=1)) as engine:
        applier = PartitionApplier(engine, "t", HERE, PARTITIONS, LOG)
        first, second = _event(program_id, someone, asked_elsewhere), _event(program_id, someone, owned_here)
        assert await applier.apply([(0, None, first, None), (1, None, second, None)]) is None  # both parked
        granted = _effect(0, ClaimAnswer(parked_offset=0, granted=True))
        # The first is released (and fills the one in-flight slot); the second, judged with its claim, is held.
        assert await applier.apply([(2, None, granted, KIND_EFFECT)]) == 3
        await engine.wait_idle()
        await applier.release_and_flush()  # the slot is free again: the second goes in now
        await engine.wait_idle()
        assert applier.claims is not None and len(applier.claims.parked) == 0
        reuse = ClaimRequest(
            program_id=program_id,
            idempotency_key=owned_here,
            payload_hash="00" * 32,  # another participant's payload
            event_ref="0@7",
            reply_partition=0,
            parked_offset=7,
        )
        assert await applier.apply([(3, None, _effect(7, reuse), KIND_EFFECT)]) is None
        with engine._store.env.begin() as txn:
            answers = [msgspec.json.decode(record.payload) for record in applier.outbox.pending(txn)]
        assert {"type": "claim_answer", "parked_offset": 7, "granted": False, "conflict_event_ref": f"{HERE}@1"} in (
            answers
        )


def _transfer(program_id: str, asset_id: str, source: str, recipient: str, amount: str, key: str | None) -> bytes:
    body = TransferCreate(
        program_id=program_id,
        asset_id=asset_id,
        recipients=[TransferRecipient(amount=amount, external_id=recipient)],
        description="gift",
        source_external_id=source,
        idempotency_key=key,
    )
    return msgspec.json.encode(body)


async def test_a_refused_transfer_uses_up_no_idempotency_key(tmp_path: Path) -> None:
    partitions_dir, program_id, asset_id = await seed_partitions(tmp_path, PARTITIONS)
    source, recipient = _on(HERE, "x"), _on(HERE, "y")
    transfer_key = _key_on("operations:" + program_id, HERE, "t")
    async with open_engine(config=_config(partitions_dir)) as engine:
        applier = PartitionApplier(engine, "t", HERE, PARTITIONS, LOG)
        made = [(0, None, _event(program_id, source, _key_on(program_id, HERE, "a")), None)]
        made += [(1, None, _event(program_id, recipient, _key_on(program_id, HERE, "b")), None)]
        assert await applier.apply(made) is None
        await engine.wait_idle()
        overdraft = _transfer(program_id, asset_id, source, recipient, "5", transfer_key)  # the source has 1
        assert await applier.apply([(2, None, overdraft, KIND_TRANSFER)]) is None
        refused = log_outcome(engine, LOG, 2)
        assert refused is not None and refused["code"] == "insufficient_balance"
        corrected = _transfer(program_id, asset_id, source, recipient, "1", transfer_key)
        assert await applier.apply([(3, None, corrected, KIND_TRANSFER)]) is None
        await engine.wait_idle()
        assert log_outcome(engine, LOG, 3) is None  # applied
        moved = engine._cache.by_external(recipient)
        assert moved is not None


async def test_a_transfer_waits_behind_its_local_recipients_parked_event(tmp_path: Path) -> None:
    partitions_dir, program_id, asset_id = await seed_partitions(tmp_path, PARTITIONS)
    source, recipient = _on(HERE, "x"), _on(HERE, "y")
    async with open_engine(config=_config(partitions_dir)) as engine:
        applier = PartitionApplier(engine, "t", HERE, PARTITIONS, LOG)
        assert (
            await applier.apply([(0, None, _event(program_id, source, _key_on(program_id, HERE, "a")), None)]) is None
        )
        await engine.wait_idle()
        creating = _event(program_id, recipient, _key_on(program_id, 0, "b"))  # parked: its key lives on 0
        gift = _transfer(program_id, asset_id, source, recipient, "1", None)
        answer = _effect(1, ClaimAnswer(parked_offset=1, granted=True))
        batch = [(1, None, creating, None), (2, None, gift, KIND_TRANSFER), (3, None, answer, KIND_EFFECT)]
        assert await applier.apply(batch) is None
        await engine.wait_idle()
        assert log_outcome(engine, LOG, 2) is None  # applied after the recipient's event, not refused
        state = engine._cache.by_external(recipient)
        assert state is not None
