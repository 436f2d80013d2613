"""The engine run as N partitions over a Kafka-protocol log (issue 16).

Broker-independent pieces live in private modules here and are wired by the engine role: ``_leases`` (shared
wallet and budget funding spent from many partitions, docs/partitioned-shared-state.md).
"""
