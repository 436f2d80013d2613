"""What bench.partitioned needs to measure idempotency claims (``--idempotency-scope program``) against ``participant``.

With claims, an event on partition p whose key partition c (``claim_partition_for``) is another one is parked, a
``ClaimRequest`` goes to c through p's outbox relay, and c's ``ClaimAnswer`` comes back to p the same way
(docs/partitioned.md, "Idempotency keys across partitions"). So a partition's log grows after the produce, and the
produce's acknowledged ends are not "everything applied". Each such event adds exactly one record to c's log and
one to p's, so the final ends are known in advance (``tests/partitioned/partition_setup.claimed_log_ends``) and are
given to the engines as ``--until-offset``; afterwards each log is read to its end (``log_end``) to check that
nothing more was produced, and :func:`finish_claims` settles what was (a relay re-producing after a broker error).

- :func:`lmdb_counts`: a store's committed LMDB write transactions (``last_txnid``) and the entries of the side
  databases the claims use (``claims``: two per claim, the claim and its time index; ``parked``: what still
  waits, 0 when done; ``outbox``: pending records plus applied markers);
- :func:`claims_figures`: the side-by-side figures of the k=2 runs, both scopes (``events_per_s_2_claims``,
  ``claims_ratio_2``, extra log records and LMDB transactions per event).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lmdb
import trio

from scrip_actor._data_dir import ENV_DIR_NAME
from scrip_actor.partitioned import partition_data_dir
from tests.partitioned.partition_setup import log_end, settle

__all__ = ["claims_figures", "finish_claims", "lmdb_counts"]

_SIDE_DATABASES = ("claims", "parked", "outbox")


def lmdb_counts(partitions_dir: Path, partitions: int) -> dict[str, int]:
    """Summed over the partitions' stores (no engine may hold them): LMDB write transactions committed, and the
    entries of each claims-related side database (absent: 0)."""
    counts = {"lmdb_txns": 0, **{f"{name}_entries": 0 for name in _SIDE_DATABASES}}
    for partition in range(partitions):
        path = partition_data_dir(partitions_dir, partition) / ENV_DIR_NAME
        env = lmdb.open(str(path), readonly=True, max_dbs=32, lock=False, subdir=True)
        try:
            counts["lmdb_txns"] += env.info()["last_txnid"]
            for name in _SIDE_DATABASES:
                try:
                    database = env.open_db(name.encode(), create=False)
                except lmdb.NotFoundError:
                    continue
                with env.begin(db=database) as txn:
                    counts[f"{name}_entries"] += txn.stat(database)["entries"]
        finally:
            env.close()
    return counts


async def finish_claims(bootstrap: str, partitions_dir: Path, topic: str, until: list[int]) -> tuple[list[int], bool]:
    """Each log's end after the engines exited, and whether it is the predicted ``until``; if a log grew past it
    (a record produced twice), the partitions are settled in this process so the checks see everything applied."""
    ends = [await trio.to_thread.run_sync(log_end, bootstrap, topic, n) for n in range(len(until))]
    if ends == until:
        return ends, True
    return await settle(bootstrap, partitions_dir, topic, len(until), scope="program"), False


def claims_figures(participant_run: dict[str, Any], claims_run: dict[str, Any]) -> dict[str, Any]:
    """The k-engine runs with either scope, side by side: rates, their ratio, and what the claims add per event."""
    engines, events = claims_run["engines"], claims_run["events"]
    extra_log = sum(claims_run["log_ends"]) - events
    per_event_txns = participant_run["lmdb_txns_added"] / participant_run["events"]
    return {
        f"events_per_s_{engines}_claims": claims_run["events_per_s"],
        f"events_per_s_{engines}_participant_scope": participant_run["events_per_s"],
        f"claims_ratio_{engines}": round(claims_run["events_per_s"] / participant_run["events_per_s"], 3),
        "claims_log_records_added_per_event": round(extra_log / events, 3),
        "claims_requests_and_answers_per_partition": claims_run["claim_records_per_partition"],
        "claims_lmdb_txns_per_event": round(claims_run["lmdb_txns_added"] / events, 3),
        "participant_scope_lmdb_txns_per_event": round(per_event_txns, 3),
        "claims_entries_per_event": round(claims_run["claims_entries"] / events, 3),
    }
