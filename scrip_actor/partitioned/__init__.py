"""The engine run as N partitions over a Kafka-protocol log (issue 16).

Broker-independent pieces live in private modules here and are wired by the engine role: ``_leases`` (shared
wallet and budget funding spent from many partitions), ``_outbox`` (effects on another partition's
participants, applied there exactly once) and ``_claims`` (idempotency keys owned by one partition, so a reuse
across participants is a 409); all are described in docs/partitioned-shared-state.md.
"""
