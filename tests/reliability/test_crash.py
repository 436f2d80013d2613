"""Issue 6, crash safety: SIGKILL the real server under HTTP load, restart it, and check nothing is lost.

The harness lives in ``bench/crash.py`` (``python -m bench.crash --trials 20`` is the long run); these tests run
it at small scale. Each trial starts ``python -m scrip_actor serve`` as a subprocess with fsync on
(``SCRIP_STORAGE_SYNC=true``), so each costs two server start-ups (~2 s each) plus the checks.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from bench import crash
from bench.crash import (
    balance_operations_trial,
    budget_trial,
    event_trial,
    expiry_trial,
    fund_burn_trial,
    map_full_trial,
    money_out_trial,
)

# A request cut off by the SIGKILL leaves httpx's request-body generator unfinished; that is the point of the test.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Exception ignored in. <async_generator object ByteStream:pytest.PytestUnraisableExceptionWarning"
)


@pytest.fixture(autouse=True)
def _verify_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same verify, without a fresh interpreter per trial (tests/integration/test_verify_cli.py covers the CLI)."""
    monkeypatch.setattr(crash, "VERIFY_WITH_CLI", False)


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_sigkill_under_event_load_loses_nothing_and_applies_nothing_twice(tmp_path: Path, seed: int) -> None:
    result = await event_trial(tmp_path, random.Random(seed), kill_min_s=0.3, kill_max_s=1.0)
    assert result.acknowledged > 0, "the kill came before any event was acknowledged: the trial proved nothing"
    assert result.acknowledged <= result.existing <= result.acknowledged + result.uncertain


async def test_sigkill_during_fund_and_burn_keeps_the_wallet_exact(tmp_path: Path) -> None:
    result = await fund_burn_trial(tmp_path, random.Random(4), kill_min_s=0.5, kill_max_s=1.0)
    assert result.acknowledged > 0


async def test_sigkill_during_lot_expiry_expires_each_lot_exactly_once(tmp_path: Path) -> None:
    result = await expiry_trial(tmp_path, random.Random(5), kill_min_s=1.3, kill_max_s=1.8)
    assert result.acknowledged > 0 and result.extra["lots"] == result.existing


async def test_sigkill_during_balance_operations_keeps_each_one_exactly_once(tmp_path: Path) -> None:
    result = await balance_operations_trial(tmp_path, random.Random(7), kill_min_s=0.5, kill_max_s=1.0)
    assert result.acknowledged > 0
    assert result.acknowledged <= result.existing <= result.acknowledged + result.uncertain


async def test_sigkill_during_redemptions_reversals_and_transfers_keeps_each_one_exactly_once(tmp_path: Path) -> None:
    result = await money_out_trial(tmp_path, random.Random(8), kill_min_s=0.5, kill_max_s=1.0)
    by_kind = result.extra["acknowledged_by_kind"]
    assert by_kind["redeem"] > 0 and by_kind["reverse"] > 0 and by_kind["transfer"] > 0, by_kind
    assert result.acknowledged <= result.existing <= result.acknowledged + result.uncertain


async def test_full_store_stops_the_server_with_a_clear_message_and_loses_nothing(tmp_path: Path) -> None:
    result = await map_full_trial(tmp_path, random.Random(6))
    assert result.acknowledged > 0
    assert result.extra["exit_status"] == 3
    assert "MDB_MAP_FULL" in result.extra["message"] and "lmdb_map_size_bytes" in result.extra["message"]


async def test_sigkill_across_tier_period_ends_loses_no_change_and_applies_none_twice(tmp_path: Path) -> None:
    from bench.crash_tiers import tier_boundary_trial

    result = await tier_boundary_trial(tmp_path, random.Random(9), kill_min_s=1.5, kill_max_s=3.0, participants=20)
    assert result.existing == 20


async def test_sigkill_across_budget_resets_loses_nothing_credits_nothing_twice_and_never_exceeds(
    tmp_path: Path,
) -> None:
    result = await budget_trial(tmp_path, random.Random(9), kill_min_s=0.8, kill_max_s=1.4)
    assert result.acknowledged > 0
    assert result.extra["credits"] > 0


async def test_sigkill_mid_fan_out_resumes_and_every_participant_gets_exactly_one_event(tmp_path: Path) -> None:
    from bench.crash_automations import fan_out_trial

    result = await fan_out_trial(tmp_path, participants=1500, kill_after_processed=200)
    assert result.existing == 1500
    assert 200 <= result.extra["processed_at_kill"] < 1500
