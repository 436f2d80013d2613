"""Shared fixtures: a real engine on real LMDB in a temp dir, with a manual wall clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from scrip_actor import Config, Engine, open_engine
from scrip_actor.config import EngineSettings, StorageSettings


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true", default=False, help="run tests marked slow")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --run-slow (make test-slow)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


class ManualClock:
    """A wall clock that moves only when told to."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 1, 1, tzinfo=UTC))


def small_config(data_dir: Path, **engine: object) -> Config:
    """Fast settings for tests: no fsync (LMDB still commits every transaction), a quick sweeper."""
    return Config(
        storage=StorageSettings(data_dir=str(data_dir), sync=False, lmdb_map_size_bytes=1 << 30),
        engine=EngineSettings(sweep_interval_s=0.05, **engine),  # type: ignore[arg-type]
    )


@pytest.fixture
async def engine(tmp_path: Path, clock: ManualClock) -> AsyncIterator[Engine]:
    async with open_engine(config=small_config(tmp_path / "data"), clock=clock) as opened:
        yield opened
        # Every store a test creates must pass verify (acceptance 7).
        await opened.wait_idle()
        report = await opened.verify()
        assert report.ok, report.problems
