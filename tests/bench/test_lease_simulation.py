"""bench.lease_simulation at toy size: no strategy overspends, and only leases with an endgame strand nothing."""

from __future__ import annotations

from bench import lease_simulation


def test_only_leases_with_an_endgame_spend_the_wallet_down_to_zero() -> None:
    result = lease_simulation.run(partitions_count=4, funded_minor=5_000, debits_count=600, seed=1)
    assert result["demand_minor"] > result["funded_minor"]
    for name in ("fixed split", "leases, no endgame", "leases + endgame"):
        assert result[name]["overspent_minor"] == 0
    assert result["leases + endgame"]["stranded_minor"] == 0
    assert result["fixed split"]["stranded_minor"] > 0
