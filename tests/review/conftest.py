"""Review tests: each opens its own engine so that an engine crash fails the test instead of a fixture."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from scrip_actor import Engine, open_engine
from tests.conftest import ManualClock, small_config


@asynccontextmanager
async def running(data_dir: Path, clock: ManualClock, **config: Any) -> AsyncIterator[Engine]:
    """An engine without the shared fixture's verify-on-teardown (some tests corrupt or crash it on purpose)."""
    cfg = small_config(data_dir, **config.pop("engine", {}))
    if config:
        import msgspec

        cfg = msgspec.structs.replace(cfg, **config)
    async with open_engine(config=cfg, clock=clock) as engine:
        yield engine


class WriteGate:
    """Hold the writer's LMDB commits (on its worker thread) until released: makes 'not yet durable' deterministic."""

    def __init__(self, engine: Engine) -> None:
        self._open = threading.Event()
        self._open.set()
        store = engine._store
        original: Callable[[Any], None] = store.commit_write

        def gated(txn: Any) -> None:
            self._open.wait(timeout=30)
            original(txn)

        store.commit_write = gated  # type: ignore[method-assign]

    def close(self) -> None:
        self._open.clear()

    def open(self) -> None:
        self._open.set()
