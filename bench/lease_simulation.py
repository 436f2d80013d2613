"""Simulation: one shared wallet spent from N partitions — fixed split, leases without endgame, leases with endgame.

Run ``python -m bench.lease_simulation`` (``--json`` for machines; ``--partitions``, ``--funded-minor``,
``--debits``, ``--seed``). Demand is skewed (partition *i* gets weight 1/(i+1)) and its total exceeds the funding,
so a strategy is judged by what it does at the end: **overspent** units (spent beyond the funding), **stranded** units
(still unspent when the demand ran out, though the demand wanted them) and **refused with funds left** (debits
refused while the wallet as a whole still had enough), plus the round trips to the owner partition per 1,000 debits (overall, and while more than half the funding
was left: once the wallet is dry every debit asks the owner, which only says no).

* fixed split: each partition owns funded/N outright; no round trips; whatever the quiet partitions hold strands.
* leases, no endgame: the owner leases a share of the remainder (at least ``min_lease``) to whoever runs short;
  a short debit waits for a fresh lease and is refused if it still does not fit. Leases held by quiet partitions
  and the tail below ``min_lease`` strand (the alternative, spending first and reconciling later, overspends).
* leases with endgame: ``scrip_actor.partitioned._leases`` itself on real LMDB: below partitions × min_lease every
  debit goes to the owner, and leases expire (``lease_ttl_ms``) so quiet partitions hand theirs back.

Messages are delivered at once (one simulated millisecond per debit); docs/partitioned-shared-state.md gives the
latency a real round trip through the log costs.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
from typing import Any

import lmdb

from scrip_actor.partitioned._leases import (
    Debited,
    LeaseOwner,
    LeasePolicy,
    PartitionLeases,
)

WALLET = "wallet"


def _demand(partitions_count: int, debits_count: int, seed: int) -> list[tuple[int, int]]:
    rng = random.Random(seed)
    weights = [1 / (index + 1) for index in range(partitions_count)]
    chosen = rng.choices(range(partitions_count), weights=weights, k=debits_count)
    return [(partition, rng.randint(1, 50)) for partition in chosen]


def _figures(funded_minor: int, spent_minor: int, refused_with_funds: int, counts: dict[str, int]) -> dict[str, Any]:
    """The verdict; round trips are counted apart for the debits made while more than half the funding was left."""
    return {
        "overspent_minor": max(0, spent_minor - funded_minor),
        "stranded_minor": max(0, funded_minor - spent_minor),
        "refused_with_funds_left": refused_with_funds,
        "round_trips_per_1000_debits": round(counts["trips"] * 1000 / counts["debits"], 1),
        "round_trips_per_1000_debits_first_half": round(counts["half_trips"] * 1000 / max(1, counts["half_debits"]), 1),
    }


def _count(counts: dict[str, int], funded_minor: int, spent_minor: int, trip: bool) -> None:
    first_half = funded_minor - spent_minor > funded_minor // 2
    counts["debits"] += 1
    counts["trips"] += trip
    counts["half_debits"] += first_half
    counts["half_trips"] += trip and first_half


def _new_counts() -> dict[str, int]:
    return dict.fromkeys(("spent", "refused", "debits", "trips", "half_debits", "half_trips"), 0)


def fixed_split(funded_minor: int, demand: list[tuple[int, int]], partitions_count: int) -> dict[str, Any]:
    """Each partition owns an equal share outright."""
    shares = [funded_minor // partitions_count] * partitions_count
    shares[0] += funded_minor - sum(shares)
    spent_minor = refused = 0
    for partition, amount_minor in demand:
        if shares[partition] >= amount_minor:
            shares[partition] -= amount_minor
            spent_minor += amount_minor
        elif funded_minor - spent_minor >= amount_minor:
            refused += 1
    counts = _new_counts()
    counts.update(debits=len(demand), half_debits=1)
    return _figures(funded_minor, spent_minor, refused, counts)


def leases_without_endgame(
    funded_minor: int, demand: list[tuple[int, int]], partitions_count: int, min_lease_minor: int
) -> dict[str, Any]:
    """Leases of a shrinking share, refilled on a shortfall, but no debit ever made at the owner."""
    remainder_minor = funded_minor
    leases = [0] * partitions_count
    spent_minor = refused = 0
    counts = _new_counts()
    for partition, amount_minor in demand:
        _count(counts, funded_minor, spent_minor, leases[partition] < amount_minor)
        if leases[partition] < amount_minor:
            remainder_minor += leases[partition]  # the old lease goes back with the request
            share_minor = max(min_lease_minor, remainder_minor // (2 * partitions_count))
            leases[partition] = min(remainder_minor, share_minor) if remainder_minor >= min_lease_minor else 0
            remainder_minor -= leases[partition]
        if leases[partition] >= amount_minor:
            leases[partition] -= amount_minor
            spent_minor += amount_minor
        elif funded_minor - spent_minor >= amount_minor:
            refused += 1
    return _figures(funded_minor, spent_minor, refused, counts)


def leases_with_endgame(funded_minor: int, demand: list[tuple[int, int]], policy: LeasePolicy) -> dict[str, Any]:
    """The real ``_leases`` state machines on real LMDB, every message delivered at once."""
    with tempfile.TemporaryDirectory(prefix="lease-sim-") as directory:
        owner_env = lmdb.open(f"{directory}/owner", max_dbs=2, map_size=1 << 26, sync=False)
        envs = [
            lmdb.open(f"{directory}/p{p}", max_dbs=2, map_size=1 << 26, sync=False)
            for p in range(policy.partitions_count)
        ]
        owner = LeaseOwner(owner_env, policy)
        sides = [PartitionLeases(env, p, policy) for p, env in enumerate(envs)]
        with owner_env.begin(write=True) as txn:
            owner.fund(txn, WALLET, funded_minor)
        counts = _new_counts()
        for now_ms, (partition, amount_minor) in enumerate(demand):
            if now_ms % 100 == 0:
                for p, side in enumerate(sides):
                    with envs[p].begin(write=True) as txn:
                        returns = side.expire(txn, now_ms)
                    _exchange(owner_env, owner, envs[p], side, returns, now_ms)
            _credit(owner_env, owner, envs[partition], sides[partition], amount_minor, now_ms, funded_minor, counts)
        for env in (owner_env, *envs):
            env.close()
    return _figures(funded_minor, counts["spent"], counts["refused"], counts)


def _credit(
    owner_env: lmdb.Environment,
    owner: LeaseOwner,
    env: lmdb.Environment,
    side: PartitionLeases,
    amount_minor: int,
    now_ms: int,
    funded_minor: int,
    counts: dict[str, int],
) -> None:
    with env.begin(write=True) as txn:
        drawn = side.draw(txn, WALLET, amount_minor, now_ms)
        _count(counts, funded_minor, counts["spent"], not drawn)
        if drawn:
            counts["spent"] += amount_minor
            return
        messages = side.short(txn, WALLET, amount_minor, origin_offset=now_ms, now_ms=now_ms)
    debited = _exchange(owner_env, owner, env, side, messages, now_ms)
    if debited:
        counts["spent"] += amount_minor
    elif funded_minor - counts["spent"] >= amount_minor:
        counts["refused"] += 1


def _exchange(
    owner_env: lmdb.Environment,
    owner: LeaseOwner,
    env: lmdb.Environment,
    side: PartitionLeases,
    messages: list[Any],
    now_ms: int,
) -> bool:
    """Deliver messages to the owner and its replies back; True if an endgame debit among them was taken."""
    with owner_env.begin(write=True) as txn:
        replies = [owner.handle(txn, message, now_ms) for message in messages]
    with env.begin(write=True) as txn:
        for reply in replies:
            side.on_reply(txn, reply, now_ms)
    return any(isinstance(reply, Debited) for reply in replies)


def run(partitions_count: int, funded_minor: int, debits_count: int, seed: int) -> dict[str, Any]:
    """All three strategies over the same demand."""
    demand = _demand(partitions_count, debits_count, seed)
    min_lease_minor = 100
    policy = LeasePolicy(partitions_count=partitions_count, min_lease_minor=min_lease_minor, lease_ttl_ms=1_000)
    return {
        "partitions": partitions_count,
        "funded_minor": funded_minor,
        "demand_minor": sum(amount for _, amount in demand),
        "debits": debits_count,
        "fixed split": fixed_split(funded_minor, demand, partitions_count),
        "leases, no endgame": leases_without_endgame(funded_minor, demand, partitions_count, min_lease_minor),
        "leases + endgame": leases_with_endgame(funded_minor, demand, policy),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--funded-minor", type=int, default=100_000)
    parser.add_argument("--debits", type=int, default=8_000)
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--json", action="store_true")
    arguments = parser.parse_args()
    result = run(arguments.partitions, arguments.funded_minor, arguments.debits, arguments.seed)
    if arguments.json:
        print(json.dumps(result, indent=2))
        return
    print(
        f"{result['partitions']} partitions, funded {result['funded_minor']:,}, "
        f"demand {result['demand_minor']:,} in {result['debits']:,} debits"
    )
    print(
        f"{'strategy':<20} {'overspent':>10} {'stranded':>10} {'refused w/ funds':>17} "
        f"{'trips/1000':>11} {'trips/1000 first half':>22}"
    )
    for name in ("fixed split", "leases, no endgame", "leases + endgame"):
        row = result[name]
        print(
            f"{name:<20} {row['overspent_minor']:>10,} {row['stranded_minor']:>10,} "
            f"{row['refused_with_funds_left']:>17,} {row['round_trips_per_1000_debits']:>11} "
            f"{row['round_trips_per_1000_debits_first_half']:>22}"
        )


if __name__ == "__main__":
    main()
