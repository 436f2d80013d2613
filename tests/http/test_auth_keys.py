"""API key sources: environment variables first, else the hashed keys file, created with one key on first start."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from scrip_actor.http.auth import KEYS_FILE_NAME, ApiKeys, presented_key


def test_environment_keys_win_and_nothing_is_written(tmp_path: Path) -> None:
    keys, new_key = ApiKeys.load(tmp_path, {"SCRIP_API_KEY": "one", "SCRIP_API_KEYS": "two, three,"})
    assert new_key is None
    assert all(keys.accepts(key) for key in ("one", "two", "three"))
    assert not keys.accepts("four") and not keys.accepts("") and not keys.accepts(None)
    assert not (tmp_path / KEYS_FILE_NAME).exists()


def test_first_start_creates_a_key_and_keeps_only_its_hash(tmp_path: Path) -> None:
    keys, new_key = ApiKeys.load(tmp_path / "data", {})
    assert new_key is not None and new_key.startswith("sk_") and keys.accepts(new_key)
    path = tmp_path / "data" / KEYS_FILE_NAME
    assert new_key not in path.read_text()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again, none = ApiKeys.load(tmp_path / "data", {})
    assert none is None and again.accepts(new_key)


def test_a_broken_keys_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / KEYS_FILE_NAME).write_text(json.dumps(["zz"]))
    with pytest.raises(ValueError, match="SHA-256"):
        ApiKeys.load(tmp_path, {})


def test_presented_key_prefers_bearer() -> None:
    assert presented_key("Bearer a", "b") == "a"
    assert presented_key("bearer  a ", None) == "a"
    assert presented_key("Basic a", "b") == "b"
    assert presented_key(None, None) is None
