"""Issue 6, crash safety: SIGKILL the real server under HTTP load, restart it, and check nothing is lost.

The harness lives in ``bench/crash.py`` (``python -m bench.crash --trials 20`` is the long run); these tests run
it at small scale. Each trial starts ``python -m scrip_actor serve`` as a subprocess with fsync on
(``SCRIP_STORAGE_SYNC=true``), so each costs two server start-ups (~2 s each) plus the checks.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from bench import crash
from bench.crash import (
    ServerProcess,
    balance_operations_trial,
    event_trial,
    expect,
    expiry_trial,
    fund_burn_trial,
    map_full_trial,
    money_out_trial,
    setup_program,
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


@pytest.mark.xfail(
    strict=True,
    reason="engine bug: a reversal's idempotency hash (engine/_operations.py _request_hash) covers the operation, "
    "the participant and the body, not the redemption named in the path, so a key reused on another redemption of "
    "the same participant with the same reason and amount replays the first reversal (200, the other redemption's "
    "id) and reverses nothing, instead of a 409 idempotency_conflict",
)
async def test_a_reversal_key_reused_on_another_redemption_is_a_conflict_not_a_replay(tmp_path: Path) -> None:
    """Found while writing the money-out trial (its keys are all fresh, so the trial itself cannot hit it)."""
    server = ServerProcess.start(tmp_path / "data")
    try:
        async with server.client() as http:
            program_id, asset_id = await setup_program(http)
            member = (await expect(http, "POST", "/v1/participants", 201, json={"external_id": "m"}))["id"]
            base: dict[str, Any] = {"program_id": program_id, "asset_id": asset_id, "description": "d"}
            credit = {**base, "type": "CREDIT", "amount": "10"}
            await expect(http, "POST", f"/v1/participants/{member}/balances/adjust", 200, json=credit)
            first, second = [
                await expect(http, "POST", f"/v1/participants/{member}/redemptions", 201, json={**base, "amount": "4"})
                for _ in range(2)
            ]
            body = {"reason": "r", "amount": "1", "idempotency_key": "k"}
            await expect(http, "POST", f"/v1/redemptions/{first['id']}/reverse", 201, json=body)
            reused = await http.post(f"/v1/redemptions/{second['id']}/reverse", json=body)
            untouched = await expect(http, "GET", f"/v1/redemptions/{second['id']}", 200)
    finally:
        assert server.stop() == 0
    assert untouched["reversed_amount"] == "0"
    assert reused.status_code == 409, reused.json()  # today: 200 with the first redemption's reversal
    assert reused.json()["code"] == "idempotency_conflict"


async def test_full_store_stops_the_server_with_a_clear_message_and_loses_nothing(tmp_path: Path) -> None:
    result = await map_full_trial(tmp_path, random.Random(6))
    assert result.acknowledged > 0
    assert result.extra["exit_status"] == 3
    assert "MDB_MAP_FULL" in result.extra["message"] and "lmdb_map_size_bytes" in result.extra["message"]
