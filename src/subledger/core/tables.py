"""The one shared schema (SQLAlchemy Core). Alembic migrations follow it."""

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    MetaData,
    String,
    Table,
    TypeDecorator,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes in and out, on engines with and without time zones."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect):
        if value is None:
            return None
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


Json = JSON().with_variant(JSONB(), "postgresql")

apps = Table(
    "apps",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("name", String(255), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("app_id", Uuid, ForeignKey("apps.id", ondelete="CASCADE"), nullable=False, index=True),
    # SHA-256 of the secret; the secret itself is shown once and never stored.
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("key_prefix", String(24), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime),
)

profiles = Table(
    "profiles",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("app_id", Uuid, ForeignKey("apps.id", ondelete="CASCADE"), nullable=False),
    Column("customer_user_id", String(255)),
    Column("first_name", String(255)),
    Column("last_name", String(255)),
    Column("gender", String(1)),
    Column("email", String(255)),
    Column("phone_number", String(255)),
    Column("birthday", Date),
    Column("ip_country", String(2)),
    Column("store_country", String(255)),
    Column("store", String(255)),
    Column("analytics_disabled", Boolean, nullable=False, default=False),
    Column("custom_attributes", Json, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    # The last response ``timestamp`` a write issued; later responses start above it.
    Column("last_timestamp_ms", BigInteger, nullable=False),
    UniqueConstraint("app_id", "customer_user_id"),
    Index(None, "app_id", "created_at"),
)

installations = Table(
    "installations",
    metadata,
    Column("profile_id", Uuid, ForeignKey("profiles.id", ondelete="CASCADE"), primary_key=True),
    Column("device_id", String(255), primary_key=True),
    Column("device", String(255)),
    Column("locale", String(255)),
    Column("os", String(255)),
    Column("platform", String(255)),
    Column("timezone", String(255)),
    Column("user_agent", String(255)),
    Column("idfa", String(255)),
    Column("idfv", String(255)),
    Column("advertising_id", String(255)),
    Column("android_id", String(255)),
    Column("android_app_set_id", String(255)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)
