"""Partitioned mode (issue 16): the engine run once per partition of a Kafka-protocol events topic.

What exists (docs/partitioned.md): the engine role (:func:`run_partition`), which applies one partition's
records to that partition's own store with the consumed offset in the same LMDB transaction as the effects, and
its consumer-group form (:func:`run_group`): the broker assigns partitions, each store opened on assignment and
closed on revocation; and the front role (``_front.py``, ``scrip serve --role front``), which accepts
``POST /v1/events`` as the embedded server does and answers 202 once the event is stored at its partition
(``_routing.partition_for``), and routes every GET to the partitions' readers (``_engine_reads.py`` serves them
beside each owned store, ``_front_reads.py`` routes and merges; ids name their partition, ``_partition_ids.py``).
All broker code is in ``_kafka.py``. Not yet: the catalog topic, merged reports.

Broker-independent pieces for state shared across partitions, tested on their own and not yet wired into the
engine role (docs/partitioned-shared-state.md): ``_leases`` (with ``_lease_messages`` and ``_lease_owner``:
shared wallet and budget funding spent from many partitions, never overspent), ``_outbox`` (effects on another
partition's participants, applied there exactly once) and ``_claims`` (idempotency keys owned by one partition,
so a reuse across participants is a 409).
"""

from scrip_actor.partitioned._engine_group import GroupSettings as GroupSettings
from scrip_actor.partitioned._engine_group import run_group as run_group
from scrip_actor.partitioned._engine_role import log_name as log_name
from scrip_actor.partitioned._engine_role import partition_data_dir as partition_data_dir
from scrip_actor.partitioned._engine_role import run_partition as run_partition

__all__ = ["GroupSettings", "log_name", "partition_data_dir", "run_group", "run_partition"]
