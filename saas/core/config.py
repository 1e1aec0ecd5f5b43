"""Settings, read once from the environment.

Importing this module never connects anywhere; `get_settings()` only reads variables
(and, in development, the generated secrets file in DATA_DIR).
"""
from __future__ import annotations

import base64
import functools
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path


class ConfigError(SystemExit):
    """Bad or missing configuration: stops the program with one clear line."""

    def __init__(self, message: str) -> None:
        super().__init__(f"configuration error: {message}")


@dataclass(frozen=True)
class Settings:
    env: str
    database_url: str | None
    redis_url: str | None
    secret_key: str
    data_key: bytes
    data_key_id: str
    base_url: str
    smtp_url: str | None
    host: str
    port: int
    data_dir: Path
    redis_prefix: str
    session_idle_seconds: int
    session_absolute_seconds: int
    spare_schemas: int = 3  # company schemas kept ready for signups (saas/admin/spares.py); 0: none

    @property
    def production(self) -> bool:
        return self.env == "production"

    @property
    def secure_cookies(self) -> bool:
        return self.base_url.startswith("https://")


def _dev_secrets(data_dir: Path) -> dict[str, str]:
    """Generate development secrets once and keep them in DATA_DIR."""
    path = data_dir / "secrets.json"
    if path.exists():
        return json.loads(path.read_text())
    data_dir.mkdir(parents=True, exist_ok=True)
    values = {
        "SECRET_KEY": secrets.token_urlsafe(48),
        "DATA_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
    }
    path.write_text(json.dumps(values))
    path.chmod(0o600)
    return values


def parse_data_key(raw: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(raw.encode() + b"=" * (-len(raw) % 4))
    except Exception as exc:  # any decoding failure is the same user error
        raise ConfigError("DATA_KEY must be 32 bytes in url-safe base64") from exc
    if len(key) != 32:
        raise ConfigError("DATA_KEY must be 32 bytes in url-safe base64")
    return key


def normalise_database_url(url: str) -> str:
    """Accept the usual postgresql:// form and use the asyncpg driver."""
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix):]
    raise ConfigError("DATABASE_URL must start with postgresql://")


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    env = dict(os.environ if environ is None else environ)
    mode = env.get("SAAS_ENV", "development")
    if mode not in ("development", "production", "test"):
        raise ConfigError("SAAS_ENV must be development, production or test")
    data_dir = Path(env.get("DATA_DIR", ".data")).absolute()
    secret_key = env.get("SECRET_KEY")
    data_key = env.get("DATA_KEY")
    if mode == "production":
        missing = [n for n in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "DATA_KEY", "BASE_URL") if not env.get(n)]
        if missing:
            raise ConfigError(f"{', '.join(missing)} must be set when SAAS_ENV=production")
    if not secret_key or not data_key:
        generated = _dev_secrets(data_dir)
        secret_key = secret_key or generated["SECRET_KEY"]
        data_key = data_key or generated["DATA_KEY"]
    if len(secret_key) < 32:
        raise ConfigError("SECRET_KEY must be at least 32 characters")
    try:
        port = int(env.get("PORT", "8000"))
    except ValueError as exc:
        raise ConfigError("PORT must be a number") from exc
    host = env.get("HOST", "127.0.0.1")
    db_url = env.get("DATABASE_URL")
    return Settings(
        env=mode,
        database_url=normalise_database_url(db_url) if db_url else None,
        redis_url=env.get("REDIS_URL") or None,
        secret_key=secret_key,
        data_key=parse_data_key(data_key),
        data_key_id=env.get("DATA_KEY_ID", "k1"),
        base_url=env.get("BASE_URL", f"http://{host}:{port}").rstrip("/"),
        smtp_url=env.get("SMTP_URL") or None,
        host=host,
        port=port,
        data_dir=data_dir,
        redis_prefix=env.get("REDIS_PREFIX", "kt"),
        session_idle_seconds=int(env.get("SESSION_IDLE_SECONDS", str(2 * 3600))),
        session_absolute_seconds=int(env.get("SESSION_ABSOLUTE_SECONDS", str(24 * 3600))),
        spare_schemas=int(env.get("SPARE_SCHEMAS", "3")),
    )


@functools.cache
def get_settings() -> Settings:
    return load_settings()
