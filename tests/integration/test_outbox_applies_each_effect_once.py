"""The cross-partition outbox on real LMDB: each effect applied once despite duplicates, reordering and crashes."""

from __future__ import annotations

from pathlib import Path

import lmdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scrip_actor.partitioned._outbox import Outbox, OutboxRecord


def _env(path: Path) -> lmdb.Environment:
    return lmdb.open(str(path), max_dbs=2, map_size=1 << 22, sync=False)


def _record(origin: int, offset: int, ordinal: int = 0, destination: int = 9) -> OutboxRecord:
    return OutboxRecord(
        origin_partition=origin,
        origin_offset=offset,
        ordinal=ordinal,
        destination_partition=destination,
        payload=b"credit %d/%d/%d" % (origin, offset, ordinal),
    )


def _apply(env: lmdb.Environment, outbox: Outbox, record: OutboxRecord, applied: list[bytes]) -> None:
    with env.begin(write=True) as txn:
        if outbox.apply_once(txn, record):
            applied.append(record.payload)


def test_pending_comes_back_in_order_until_marked_relayed(tmp_path: Path) -> None:
    env = _env(tmp_path / "origin")
    outbox = Outbox(env)
    with env.begin(write=True) as txn:
        for offset in (7, 3, 300):
            for ordinal in (1, 0):
                outbox.append(txn, _record(1, offset, ordinal))
    with env.begin() as txn:
        order = [(r.origin_offset, r.ordinal) for r in outbox.pending(txn)]
    assert order == [(3, 0), (3, 1), (7, 0), (7, 1), (300, 0), (300, 1)]
    with env.begin(write=True) as txn:
        outbox.mark_relayed(txn, outbox.pending(txn, limit=4))
        outbox.mark_relayed(txn, outbox.pending(txn, limit=1)[:0])
    with env.begin() as txn:
        assert [(r.origin_offset, r.ordinal) for r in outbox.pending(txn)] == [(300, 0), (300, 1)]


def test_a_crash_between_produce_and_mark_relayed_re_relays_and_still_applies_once(tmp_path: Path) -> None:
    origin_env, destination_env = _env(tmp_path / "origin"), _env(tmp_path / "destination")
    origin, destination = Outbox(origin_env), Outbox(destination_env)
    with origin_env.begin(write=True) as txn:
        for offset in range(1, 6):
            origin.append(txn, _record(1, offset))
    applied: list[bytes] = []
    topic: list[OutboxRecord] = []
    with origin_env.begin() as txn:
        topic.extend(origin.pending(txn))  # produced ...
    try:
        with origin_env.begin(write=True) as txn:
            origin.mark_relayed(txn, topic)
            raise RuntimeError("crash before the mark-relayed txn commits")
    except RuntimeError:
        pass
    with origin_env.begin() as txn:
        topic.extend(origin.pending(txn))  # ... and produced again after the restart
    for record in topic:
        _apply(destination_env, destination, record, applied)
    assert applied == [b"credit 1/%d/0" % offset for offset in range(1, 6)]


def test_an_effect_rolled_back_with_its_txn_is_not_marked_applied(tmp_path: Path) -> None:
    env = _env(tmp_path / "destination")
    outbox = Outbox(env)
    try:
        with env.begin(write=True) as txn:
            assert outbox.apply_once(txn, _record(1, 1))
            raise RuntimeError("the effect failed")
    except RuntimeError:
        pass
    with env.begin(write=True) as txn:
        assert outbox.apply_once(txn, _record(1, 1))


@settings(max_examples=60, deadline=None)
@given(
    per_origin=st.lists(st.integers(1, 6), min_size=1, max_size=4),
    data=st.data(),
)
def test_duplicates_and_interleaved_origins_apply_each_record_once(
    tmp_path_factory: pytest.TempPathFactory, per_origin: list[int], data: st.DataObject
) -> None:
    env = _env(tmp_path_factory.mktemp("destination"))
    outbox = Outbox(env)
    streams = [
        [_record(origin, offset, ordinal) for offset in range(1, n + 1) for ordinal in (0, 1)]
        for origin, n in enumerate(per_origin)
    ]
    positions = [0] * len(streams)
    applied: list[bytes] = []
    while any(position < len(stream) for position, stream in zip(positions, streams, strict=True)):
        origin = data.draw(st.sampled_from([o for o, s in enumerate(streams) if positions[o] < len(s)]))
        step_back = data.draw(st.integers(0, min(positions[origin], 3)))  # a re-relay repeats a few records
        if step_back:
            _apply(env, outbox, streams[origin][positions[origin] - step_back], applied)
        else:
            _apply(env, outbox, streams[origin][positions[origin]], applied)
            positions[origin] += 1
        if data.draw(st.booleans()):
            with env.begin(write=True) as txn:
                outbox.prune(txn, origin)
    expected = sorted(record.payload for stream in streams for record in stream)
    assert sorted(applied) == expected
    env.close()


def test_pruning_drops_markers_below_the_highest_offset_yet_still_rejects_old_duplicates(tmp_path: Path) -> None:
    env = _env(tmp_path / "destination")
    outbox = Outbox(env)
    applied: list[bytes] = []
    for offset in range(1, 11):
        _apply(env, outbox, _record(2, offset), applied)
    _apply(env, outbox, _record(3, 1), applied)
    with env.begin(write=True) as txn:
        assert outbox.prune(txn, 2) == 9
        assert outbox.watermark(txn, 2) == 10
        assert outbox.watermark(txn, 3) == 0
    for offset in (1, 5, 10):
        _apply(env, outbox, _record(2, offset), applied)
    _apply(env, outbox, _record(2, 10, ordinal=1), applied)  # another ordinal of the highest offset still applies
    _apply(env, outbox, _record(3, 1), applied)
    assert len(applied) == 12
