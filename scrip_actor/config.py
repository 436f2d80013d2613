"""Settings: one typed, frozen :class:`Config`, from ``config/default.toml`` plus ``SCRIP_*`` variables.

Precedence, lowest first: built-in defaults (the Struct defaults, equal to ``config/default.toml``), a TOML file
(``--config`` or ``SCRIP_CONFIG``), then environment variables ``SCRIP_<SECTION>_<KEY>``. Unknown keys in the file or
unknown ``SCRIP_<SECTION>_*`` variables fail at start-up.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

__all__ = [
    "AutomationSettings",
    "BacktestSettings",
    "Config",
    "EngineSettings",
    "Limits",
    "ServerSettings",
    "StorageSettings",
    "WebhookSettings",
    "load_config",
]

_Positive = Annotated[int, Meta(ge=1)]


class ServerSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """HTTP server settings."""

    host: str = "127.0.0.1"
    port: Annotated[int, Meta(ge=0, le=65535)] = 8080
    shutdown_grace_s: Annotated[float, Meta(ge=0)] = 10.0
    # After recovery, freeze the heap out of the cyclic GC and make young collections rare (scrip_actor/_gc.py).
    gc_tuned: bool = True


class StorageSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Where and how the LMDB store lives."""

    data_dir: str = "./data"
    lmdb_map_size_bytes: _Positive = 16 * 1024**3
    # Above this much file-backed resident memory (MiB), drop this process's mapping of LMDB's pages; 0: never.
    # They stay in the page cache; only the process's RSS is bounded (see scrip_actor/_residency.py).
    lmdb_map_resident_max_mb: Annotated[int, Meta(ge=0)] = 256
    sync: bool = True
    max_readers: _Positive = 256


class EngineSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Runtime sizing of actors, queues and the writer."""

    actors_resident_max: _Positive = 100_000
    inflight_events_max: _Positive = 50_000
    # The event_data bytes (as JSON) of those events: large events hit this before the count (docs/limits.md).
    inflight_event_bytes_max: _Positive = 128 * 1024**2
    commit_batch_records_max: _Positive = 2000
    sweep_interval_s: Annotated[float, Meta(gt=0)] = 1.0
    # "compiled" (ours) runs the rules; "celpy" runs them on cel-python, only as a benchmark baseline.
    cel_backend: Literal["compiled", "celpy"] = "compiled"


class Limits(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Every input bound, in one place (see docs/limits.md)."""

    event_data_bytes_max: _Positive = 65536
    event_data_depth_max: _Positive = 16
    idempotency_key_length_max: _Positive = 255
    external_id_length_max: _Positive = 255
    rules_per_program_max: _Positive = 1000
    actions_per_rule_max: _Positive = 50
    condition_length_max: _Positive = 4096
    tags_per_participant_max: _Positive = 1000
    attributes_per_participant_max: _Positive = 1000
    counters_per_participant_max: _Positive = 1000
    page_size_max: _Positive = 200
    #: CEL work per event, all rules together, in cost units (scrip_actor/cel/_cost.py): ~3 ms at worst.
    cel_cost_per_event_max: _Positive = 20_000


class AutomationSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """The automation runner (docs/automations.md)."""

    # A fire that was due while the engine was down: "run_late" runs it once at the next open, "skip" drops it.
    missed_fire_policy: Literal["run_late", "skip"] = "run_late"
    fanout_batch_size: Annotated[int, Meta(ge=1, le=10_000)] = 200  # participants per durable cursor step
    fanout_inflight_max: _Positive = 256  # a fan-out waits while more events than this are unprocessed
    poll_interval_s: Annotated[float, Meta(gt=0)] = 1.0  # the longest the runner sleeps between looks
    # participant_state: how often the participants are enrolled again (new members, changed attributes).
    subscription_refresh_interval_s: Annotated[float, Meta(ge=60)] = 86400.0


class WebhookSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Outgoing webhooks (docs/webhooks.md)."""

    # Targets on private, loopback, link-local, multicast or reserved addresses (and plain http) are refused unless
    # this is true: for tests and a receiver on the same host, never for targets users can choose.
    allow_private_targets: bool = False
    # The Fernet key that encrypts endpoint secrets at rest: this (SCRIP_WEBHOOKS_SECRET_KEY), else the key file,
    # created 0600 on first use, outside the data directory: a copy of ./data alone reveals no secret.
    secret_key: str = ""
    secret_key_file: str = "./scrip-webhooks.key"
    # After rotate-secret, deliveries are signed with the new and the old secret for this long.
    rotation_overlap_s: Annotated[float, Meta(ge=0)] = 86400.0
    attempts_max: Annotated[int, Meta(ge=1, le=100)] = 8
    retry_base_s: Annotated[float, Meta(gt=0)] = 5.0  # attempt n waits base * 2**(n-1), with jitter, up to max
    retry_max_s: Annotated[float, Meta(gt=0)] = 3600.0
    connect_timeout_s: Annotated[float, Meta(gt=0)] = 5.0
    read_timeout_s: Annotated[float, Meta(gt=0)] = 10.0
    poll_interval_s: Annotated[float, Meta(gt=0)] = 1.0  # how often the worker looks for due retries
    # Outbox records whose every delivery is DELIVERED or FAILED are pruned (with those deliveries) after this long.
    retention_s: Annotated[float, Meta(gt=0)] = 7 * 86400.0
    endpoints_max: _Positive = 100
    # An ACTIVE endpoint whose deliveries end FAILED (every attempt spent) this many times in a row is DISABLED, with
    # a disabled_reason: a dead receiver stops holding up its queue and growing the outbox. 0: never.
    disable_after_failed_deliveries: Annotated[int, Meta(ge=0, le=1000)] = 5


class BacktestSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Backtests of proposed rule sets (docs/backtest.md): the bounds of one run and how many run or are kept."""

    window_days_max: Annotated[int, Meta(ge=1, le=3660)] = 92  # to - from, at most
    events_max: _Positive = 1_000_000  # window events one run replays, at most
    time_max_s: Annotated[float, Meta(gt=0)] = 600.0  # a run over this ends FAILED with its partial counts
    running_max: Annotated[int, Meta(ge=1, le=16)] = 1  # more at once: 409 backtest_running
    finished_kept: Annotated[int, Meta(ge=1, le=10_000)] = 20  # finished runs kept in memory, newest
    inline_wait_s: Annotated[float, Meta(ge=0, le=60)] = 5.0  # POST .../backtest waits this long for the result
    # A run holds the engine's one thread at most this long, then gives it back for pause_ms (0: just a turn of
    # trio's loop) so live events, HTTP and the writer run between two slices (docs/benchmarks.md).
    # "process": each run in a child process reading the store read-only (live traffic keeps its latency);
    # "task": on the engine's own thread, slice by slice (no process to start; measured in docs/benchmarks.md).
    isolation: Literal["process", "task"] = "process"
    slice_ms: Annotated[float, Meta(gt=0, le=1000)] = 1.0
    pause_ms: Annotated[float, Meta(ge=0, le=1000)] = 0.0


class Config(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """All settings. Build with :func:`load_config`, or directly in tests: ``Config()`` is the default."""

    server: ServerSettings = ServerSettings()
    storage: StorageSettings = StorageSettings()
    engine: EngineSettings = EngineSettings()
    limits: Limits = Limits()
    automations: AutomationSettings = AutomationSettings()
    webhooks: WebhookSettings = WebhookSettings()
    backtests: BacktestSettings = BacktestSettings()


_SECTIONS = ("server", "storage", "engine", "limits", "automations", "webhooks", "backtests")
# SCRIP_* variables that are not settings of a section (read by the CLI / HTTP layer themselves).
_NON_SECTION_VARIABLES = frozenset({"SCRIP_CONFIG", "SCRIP_API_KEY", "SCRIP_API_KEYS"})


def _environment_overrides(environ: dict[str, str]) -> dict[str, dict[str, Any]]:
    overrides: dict[str, dict[str, Any]] = {}
    for name, text in environ.items():
        if not name.startswith("SCRIP_") or name in _NON_SECTION_VARIABLES:
            continue
        rest = name[len("SCRIP_") :].lower()
        section = next((s for s in _SECTIONS if rest.startswith(s + "_")), None)
        if section is None:
            continue  # not ours to judge (e.g. a test's own variable)
        key = rest[len(section) + 1 :]
        overrides.setdefault(section, {})[key] = text
    return overrides


def load_config(path: str | os.PathLike[str] | None = None, environ: dict[str, str] | None = None) -> Config:
    """Load settings: defaults, then the TOML file (if any), then ``SCRIP_<SECTION>_<KEY>`` variables.

    Raises:
        ValueError: an unknown key, a wrong type or an out-of-range value, naming the offending setting.
    """
    environ = dict(os.environ if environ is None else environ)
    merged: dict[str, dict[str, Any]] = {}
    file_path = path if path is not None else environ.get("SCRIP_CONFIG")
    if file_path:
        with Path(file_path).open("rb") as file:
            loaded = tomllib.load(file)
        for section, values in loaded.items():
            if not isinstance(values, dict):
                raise ValueError(f"config: [{section}] must be a table")
            merged.setdefault(section, {}).update(values)
    for section, values in _environment_overrides(environ).items():
        merged.setdefault(section, {}).update(values)
    try:
        # strict=False lets "8080" from the environment become an int; unknown fields still fail.
        return msgspec.convert(merged, Config, strict=False)
    except msgspec.ValidationError as error:
        raise ValueError(f"config: {error}") from None
