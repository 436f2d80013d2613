"""`scrip serve` freezes the recovered heap out of the cyclic GC and raises the generation-0 threshold; the
setting can be turned off. Checked in a child process: freezing the test process's own heap would change it."""

from __future__ import annotations

import subprocess
import sys

from scrip_actor.config import load_config

_PROBE = """
import gc
from scrip_actor._gc import GEN0_THRESHOLD, tune_for_long_lived_heap
before = gc.get_freeze_count()
tune_for_long_lived_heap()
assert gc.get_threshold()[0] == GEN0_THRESHOLD, gc.get_threshold()
assert gc.get_freeze_count() > before
print("ok")
"""


def test_tuning_freezes_the_heap_and_makes_young_collections_rare() -> None:
    result = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_the_server_setting_is_on_by_default_and_can_be_turned_off(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    assert load_config().server.gc_tuned is True
    monkeypatch.setenv("SCRIP_SERVER_GC_TUNED", "false")
    assert load_config().server.gc_tuned is False
