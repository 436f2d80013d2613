"""A backtest of a data directory without an engine: ``scrip backtest --data-dir`` (docs/backtest.md).

The store is opened read-only, as ``scrip verify`` opens it: no lock is taken and nothing is written, so it runs
beside a ``scrip serve`` that has the directory open (LMDB readers in another process never block its writer),
or with no server at all. The catalog (programs, assets, rules), the tier definitions and the stored rule sets
are read once; then the very stage the server runs (:class:`~scrip_actor.engine._backtests.Backtests`) runs the
job in a nursery of its own. The store is read in short read transactions, so a server committing meanwhile is
seen as it goes: events of the window that are still unprocessed are skipped (and counted as such).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import msgspec
import trio

from scrip_actor._event_records import decode_event
from scrip_actor.backtest_model import Backtest, BacktestCreate
from scrip_actor.config import Config
from scrip_actor.engine._backtest_replay import ReplaySources
from scrip_actor.engine._backtests import Backtests
from scrip_actor.engine._catalog import Catalog
from scrip_actor.engine._rule_set_registry import RuleSetRegistry
from scrip_actor.engine._step import StepLimits
from scrip_actor.errors import ScripError
from scrip_actor.ids import SequenceIds
from scrip_actor.ledger import World
from scrip_actor.model import Event
from scrip_actor.store import Store, be64
from scrip_actor.tiers import TierDefinition

__all__ = ["backtest_data_dir"]

PROGRESS_INTERVAL_S = 0.2  # how often ``progress`` is told how far the run is


async def backtest_data_dir(
    data_dir: str, config: Config, program_id: str, request: BacktestCreate, progress: Callable[[Backtest], None]
) -> Backtest:
    """Backtest ``program_id`` of the store at ``data_dir`` (read-only); ``progress`` sees the job as it runs.

    Raises:
        StoreUnusable: no store there, or another schema. NotFound, ValidationFailed: as the HTTP route.
    """
    storage = config.storage
    store = Store(
        data_dir, map_size_bytes=storage.lmdb_map_size_bytes, sync=False, max_readers=storage.max_readers, readonly=True
    )
    try:
        backtests = _stage(store, config)
        refused: ScripError | None = None
        async with trio.open_nursery() as nursery:  # a refusal is raised outside it: not wrapped in a group
            backtests.nursery = nursery
            try:
                started = await backtests.start(program_id, request)
            except ScripError as error:
                refused = error
            while refused is None:
                job = await backtests.wait(program_id, started.id, PROGRESS_INTERVAL_S)
                progress(job)
                if job.status != "RUNNING":
                    return job
        assert refused is not None
        raise refused
    finally:
        store.close()


def _stage(store: Store, config: Config) -> Backtests:
    """The backtest stage over a read-only store: what the engine would have loaded at open, read once."""
    ids = SequenceIds(store.id_prefix)
    world = World(ids)
    clock = lambda: datetime.now(UTC)  # noqa: E731 - receipt time of the job only
    catalog = Catalog(
        store=store,
        writer=None,  # type: ignore[arg-type] - the catalog only reads here (load, lookups, compile)
        world=world,
        limits=config.limits,
        clock=clock,
        cel_backend=config.engine.cel_backend,
        inbox_sequence=lambda: 0,
    )
    catalog.load()
    rule_sets = RuleSetRegistry()
    rule_sets.load(store)
    tiers: dict[str, dict[str, TierDefinition]] = {}
    for _, raw in store.scan("tiers"):
        definition = msgspec.json.decode(raw, type=TierDefinition)
        tiers.setdefault(definition.program_id, {})[definition.key] = definition

    def stored_event(sequence: int, raw: bytes) -> Event | None:
        outcome = store.get_raw("event_outcomes", be64(sequence))
        return decode_event(sequence, raw, outcome, ids, rule_sets.members)

    limits = config.limits
    sources = ReplaySources(
        store=store,
        id_prefix=store.id_prefix,
        stored_event=stored_event,
        world=world,
        step_limits=StepLimits(
            cel_cost_per_event_max=limits.cel_cost_per_event_max,
            external_id_length_max=limits.external_id_length_max,
            tags_per_participant_max=limits.tags_per_participant_max,
            counters_per_participant_max=limits.counters_per_participant_max,
            attributes_per_participant_max=limits.attributes_per_participant_max,
        ),
        tiers=lambda: tiers,
        rule_history=catalog.rule_history_sets,
    )
    return Backtests(
        catalog=catalog, sources=sources, settings=config.backtests, limits=limits, clock=clock, caught_up=_nothing
    )


async def _nothing() -> Any:
    """No writer here: everything committed is already on disk."""
