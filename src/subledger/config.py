"""Settings, read once from environment variables (prefix ``SUBLEDGER_``)."""

from functools import cached_property
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SUBLEDGER_", extra="ignore")

    data_dir: Path = Path("./data")
    # Empty means: the embedded SQLite file under ``data_dir``.
    database_url: str = ""
    max_body_bytes: int = Field(default=1024 * 1024, ge=1)
    # SQLite's durability: FULL survives power loss, NORMAL only process crashes.
    sqlite_synchronous: str = Field(default="FULL", pattern="^(OFF|NORMAL|FULL|EXTRA)$")
    # How long a process trusts an API key it has checked before asking the database again.
    api_key_cache_seconds: float = Field(default=5.0, ge=0)
    log_level: str = "info"

    @cached_property
    def sqlalchemy_url(self) -> str:
        """The database URL in SQLAlchemy's spelling (psycopg 3 for PostgreSQL)."""
        url = self.database_url or f"sqlite:///{(self.data_dir / 'subledger.db').resolve()}"
        for prefix in ("postgresql://", "postgres://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix):]
        return url

    @property
    def is_embedded(self) -> bool:
        return self.sqlalchemy_url.startswith("sqlite")
