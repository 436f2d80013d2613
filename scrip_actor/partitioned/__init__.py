"""Partitioned mode (issue 16): the engine run once per partition of a Kafka-protocol events topic.

What exists (docs/partitioned.md): the engine role (:func:`run_partition`), which applies one partition's
records to that partition's own store with the consumed offset in the same LMDB transaction as the effects. All
broker code is in ``_kafka.py``. Not yet: the front role, group membership/rebalancing, the catalog topic, reads
through the front; leases and the cross-partition outbox come from branch i16-leases (``_leases.py``,
``_outbox.py``).
"""

from scrip_actor.partitioned._engine_role import log_name as log_name
from scrip_actor.partitioned._engine_role import partition_data_dir as partition_data_dir
from scrip_actor.partitioned._engine_role import run_partition as run_partition

__all__ = ["log_name", "partition_data_dir", "run_partition"]
