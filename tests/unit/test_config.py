"""Settings: defaults, TOML, SCRIP_* overrides, and typos that fail loudly."""

from __future__ import annotations

from pathlib import Path

import pytest

from scrip_actor.config import Config, load_config

REPO = Path(__file__).resolve().parents[2]


def test_shipped_defaults_equal_the_struct_defaults() -> None:
    assert load_config(REPO / "config" / "default.toml", environ={}) == Config()


def test_environment_overrides_with_types() -> None:
    config = load_config(
        None,
        {
            "SCRIP_SERVER_PORT": "9090",
            "SCRIP_STORAGE_SYNC": "false",
            "SCRIP_STORAGE_DATA_DIR": "/tmp/x",
            "SCRIP_API_KEY": "not-a-setting",
        },
    )
    assert config.server.port == 9090
    assert config.storage.sync is False
    assert config.storage.data_dir == "/tmp/x"


@pytest.mark.parametrize(
    "environ", [{"SCRIP_SERVER_PROT": "1"}, {"SCRIP_SERVER_PORT": "http"}, {"SCRIP_SERVER_PORT": "70000"}]
)
def test_typos_and_bad_values_fail(environ: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="config"):
        load_config(None, environ)


def test_unknown_file_keys_fail(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[engine]\nactors_resident = 5\n")
    with pytest.raises(ValueError, match="actors_resident"):
        load_config(path, {})
