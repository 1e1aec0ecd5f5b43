"""Configuration: one clear line for bad or missing settings; generated secrets in development."""
from __future__ import annotations

import subprocess
import sys

import pytest

from saas.core.config import ConfigError, load_settings


def test_production_refuses_to_start_without_secrets(tmp_path) -> None:
    r = subprocess.run([sys.executable, "-m", "saas.cli", "tenants", "list"], capture_output=True, text=True,
                       env={"PATH": "/usr/bin:/bin", "SAAS_ENV": "production", "DATA_DIR": str(tmp_path)})
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "DATABASE_URL" in lines[0] and "SECRET_KEY" in lines[0] and "DATA_KEY" in lines[0]


def test_development_generates_secrets_once(tmp_path) -> None:
    first = load_settings({"DATA_DIR": str(tmp_path)})
    second = load_settings({"DATA_DIR": str(tmp_path)})
    assert first.secret_key == second.secret_key and len(first.data_key) == 32
    assert (tmp_path / "secrets.json").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("env, message", [
    ({"DATABASE_URL": "mysql://x"}, "DATABASE_URL"),
    ({"PORT": "eighty"}, "PORT"),
    ({"DATA_KEY": "short"}, "DATA_KEY"),
    ({"SAAS_ENV": "staging"}, "SAAS_ENV"),
])
def test_bad_values_name_the_variable(tmp_path, env, message) -> None:
    with pytest.raises(ConfigError) as exc:
        load_settings({"DATA_DIR": str(tmp_path), **env})
    assert message in str(exc.value.code)


def test_database_url_takes_the_usual_form(tmp_path) -> None:
    s = load_settings({"DATA_DIR": str(tmp_path), "DATABASE_URL": "postgresql://u@h:5432/db"})
    assert s.database_url == "postgresql+asyncpg://u@h:5432/db"
