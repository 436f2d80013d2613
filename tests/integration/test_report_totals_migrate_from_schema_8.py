"""A schema-8 store (no report totals, no time keys) is backfilled on open: the reports then answer exactly what
the engine that wrote the store answered, and verify passes."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import lmdb
import msgspec

from scrip_actor import CreditAction
from scrip_actor.verify import verify
from tests.conftest import ManualClock
from tests.helpers import program_with_asset, rule, send
from tests.review.conftest import running


def _make_schema_8(data_dir: Path) -> None:
    """What schema 8 looked like: no report databases' contents, no ``time`` keys in the journal index."""
    env = lmdb.open(str(data_dir / "ledger.lmdb"), max_dbs=64, subdir=True)
    with env.begin(write=True) as txn:
        for name in (b"report_hours", b"report_counts", b"report_expiry", b"events_by_time"):
            txn.drop(env.open_db(name, txn=txn), delete=True)
        index = env.open_db(b"journal_index", txn=txn)
        stale = [bytes(key) for key, _ in txn.cursor(db=index) if bytes(key).startswith(b"time\0")]
        assert stale
        for key in stale:
            txn.delete(key, db=index)
        txn.put(b"schema", msgspec.json.encode(8), db=env.open_db(b"meta", txn=txn))
    env.close()


async def test_a_schema_8_store_is_backfilled(tmp_path: Path, clock: ManualClock) -> None:
    data_dir = tmp_path / "d"
    start, end = datetime(2026, 1, 1, 10, 30, tzinfo=UTC), datetime(2026, 1, 2, 7, 15, tzinfo=UTC)
    async with running(data_dir, clock) as engine:
        program, asset = await program_with_asset(engine, mode="LOT", scale=0)
        await rule(engine, program, "true", [CreditAction(asset_id=asset.id, amount="event.n", expires_at="720h")])
        for number, hour in enumerate((9, 10, 11, 30, 31)):
            moment = datetime(2026, 1, 1, tzinfo=UTC).replace(hour=hour % 24, day=1 + hour // 24, minute=40)
            assert (await send(engine, program, f"u{number % 2}", {"n": number + 1}, at=moment)).status == "COMPLETED"
        before = (
            await engine.reports.ledger_summary(start=start, end=end),
            await engine.reports.expiration_schedule(start=start.date(), end=end.date(), granularity="day"),
            await engine.reports.program_activity(start=start, end=end),
        )
    _make_schema_8(data_dir)
    async with running(data_dir, clock) as engine:
        after = (
            await engine.reports.ledger_summary(start=start, end=end),
            await engine.reports.expiration_schedule(start=start.date(), end=end.date(), granularity="day"),
            await engine.reports.program_activity(start=start, end=end),
        )
        assert msgspec.to_builtins(after) == msgspec.to_builtins(before)
        (summary,) = after[0]
        assert (summary.opening_balance, summary.period_issued, summary.closing_balance) == ("1", "9", "10")
    assert verify(str(data_dir)).ok
