"""Settings, read once from environment variables (prefix ``SUBLEDGER_``)."""

import ipaddress
from functools import cached_property
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from platformdirs import user_data_path
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DATABASE_FILE = "subledger.db"  # the embedded database, in the data directory
# Where the data directory is unless SUBLEDGER_DATA_DIR says: the user's data directory
# (~/.local/share/subledger on Linux), the same wherever a command runs.
DEFAULT_DATA_DIR = user_data_path("subledger", appauthor=False)
# Where versions before 0.9 kept it: relative to the directory a command ran in.
EARLIER_DATA_DIR = Path("data")


class Settings(BaseSettings):
    # A variable set but empty (``SUBLEDGER_DATABASE_THREADS=``) means the default.
    model_config = SettingsConfigDict(env_prefix="SUBLEDGER_", extra="ignore", env_ignore_empty=True)

    data_dir: Path = DEFAULT_DATA_DIR
    # Empty means: the embedded SQLite file under ``data_dir``.
    database_url: str = ""
    # Threads of a server process that run requests' database work, one connection
    # each; unset or empty for the engine's default (``request_threads``).
    database_threads: int | None = Field(default=None, ge=1)
    # The database URL reaches PostgreSQL through a pooler in transaction mode (PgBouncer's
    # ``pool_mode = transaction``), which runs each transaction on whichever server connection
    # is free: a statement prepared on one is not there on the next, so none is prepared.
    database_transaction_pooling: bool = False
    # A streaming replica of the PostgreSQL database: the reads that may lag a moment behind the
    # writes (analytics, exports, event feeds, dashboard lists) go there.
    database_read_url: str = ""
    # How long connecting to PostgreSQL may take before a request fails with 503.
    database_connect_timeout_seconds: int = Field(default=5, ge=1)
    max_body_bytes: int = Field(default=1024 * 1024, ge=1)
    # The Web API's own limits (its key is public): requests a second a public key, and a client
    # address, may make of each server process (bursts of twice that), and its bodies' size.
    web_api_rate_per_key: float = Field(default=100.0, gt=0)
    web_api_rate_per_address: float = Field(default=10.0, gt=0)
    web_api_max_body_bytes: int = Field(default=16 * 1024, ge=1)
    # The Export Analytics API's limit: requests a second per app, all server processes together.
    client_api_rate_per_second: float = Field(default=2.0, gt=0)
    # The contract's limit on virtual currency transactions: requests a minute per app, all
    # server processes together, a minute's worth of them at once.
    virtual_currency_rate_per_minute: float = Field(default=600.0, gt=0)
    # A request's head (request line and headers) may take this many bytes at most (431 beyond).
    max_header_bytes: int = Field(default=64 * 1024, ge=1024)
    # A request must arrive in full within this long (of the connection opening, or of its first byte).
    request_read_timeout_seconds: float = Field(default=30.0, gt=0)
    # SQLite's durability: FULL survives power loss, NORMAL only process crashes.
    sqlite_synchronous: str = Field(default="FULL", pattern="^(OFF|NORMAL|FULL|EXTRA)$")
    # How long a process's SQLite writers may keep joining one commit (core.group_commit): longer
    # shares more commits at full load, shorter keeps writes' latency down under lighter load.
    sqlite_group_commit_ms: float = Field(default=10.0, ge=0, le=1000)
    # How long a process trusts an API key it has checked before asking the database again.
    api_key_cache_seconds: float = Field(default=5.0, ge=0)
    # Deliver webhooks from inside `serve`: "auto" does on the embedded database
    # (on PostgreSQL run `subledger worker` processes instead).
    serve_worker: Literal["auto", "on", "off"] = "auto"
    # A webhook delivery that takes longer fails (and is retried).
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)
    # Send webhooks to loopback, private and link-local addresses too (receivers on the
    # operator's own network); off, only public addresses are sent to.
    webhook_allow_private_networks: bool = False
    # How long a worker's claim on a delivery lasts; after a crash, the wait before another worker sends it.
    webhook_lease_seconds: float = Field(default=60.0, gt=0)
    # Where Stripe's, Google Play's and Paddle's APIs are (a stand-in's address in tests).
    stripe_api_base: str = "https://api.stripe.com"
    google_play_api_base: str = "https://androidpublisher.googleapis.com"
    # Empty: Paddle's live or sandbox API, as each app is configured.
    paddle_api_base: str = ""
    # Google's certificates for the OIDC tokens of authenticated Pub/Sub pushes.
    google_oauth2_certs_url: str = "https://www.googleapis.com/oauth2/v1/certs"
    # Where the App Store Server API is; empty: Apple's, for the payload's environment (a stand-in's in tests).
    app_store_api_base: str = ""
    # Ask Apple's OCSP service whether the certificates of each signed payload are revoked
    # (off: the chain, Apple's OIDs and the signature are checked offline).
    apple_online_checks: bool = False
    # Seals webhook secrets at rest; generated under data_dir when empty.
    secret_key: str = ""
    log_level: str = "info"

    @field_validator(
        "stripe_api_base", "google_play_api_base", "paddle_api_base", "google_oauth2_certs_url", "app_store_api_base"
    )
    @classmethod
    def _encrypted_unless_loopback(cls, value: str) -> str:
        """A store's API is sent the app's credentials: over TLS, but to a stand-in on this machine."""
        if not value:
            return value
        parts = urlsplit(value)
        if parts.scheme == "https" and parts.hostname:
            return value
        if parts.scheme == "http" and _is_loopback(parts.hostname or ""):
            return value
        raise ValueError("must be an https:// URL (http:// only to this machine: localhost, 127.0.0.1, [::1])")

    @cached_property
    def sqlalchemy_url(self) -> str:
        """The database URL in SQLAlchemy's spelling (psycopg 3 for PostgreSQL)."""
        return _sqlalchemy_url(self.database_url or f"sqlite:///{(self.data_dir / DATABASE_FILE).resolve()}")

    def earlier_database(self) -> Path | None:
        """The embedded database an earlier version made under ``./data`` here, when this one would
        use the default data directory instead (so that the operator can point at it)."""
        if self.database_url or self.data_dir != DEFAULT_DATA_DIR:
            return None
        earlier = (EARLIER_DATA_DIR / DATABASE_FILE).resolve()
        return earlier if earlier.exists() and earlier != (self.data_dir / DATABASE_FILE).resolve() else None

    @property
    def sqlalchemy_read_url(self) -> str | None:
        """The replica's URL in SQLAlchemy's spelling; None without one."""
        return _sqlalchemy_url(self.database_read_url) if self.database_read_url else None

    @property
    def is_embedded(self) -> bool:
        return self.sqlalchemy_url.startswith("sqlite")

    @property
    def request_threads(self) -> int:
        """40 on SQLite, whose writers queue for its one write lock and share a commit
        (the longer the queue, the fewer commits); 4 on PostgreSQL, as fast as more on
        loopback, with fewer connections. More pay on PostgreSQL across a network,
        where each statement waits for a round trip."""
        return self.database_threads or (40 if self.is_embedded else 4)

    @property
    def delivers_in_serve(self) -> bool:
        return self.serve_worker == "on" or (self.serve_worker == "auto" and self.is_embedded)


def _sqlalchemy_url(url: str) -> str:
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
