"""The one shared schema (SQLAlchemy Core). Alembic migrations follow it."""

from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from functools import lru_cache
from typing import Any
from uuid import UUID

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy import Uuid as NativeUuid
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.expression import false, text, true

from subledger.core.packing import pack, unpack

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
    }
)


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out. PostgreSQL keeps them as ``timestamptz``; SQLite, which
    has no type for them, as integer microseconds since 1970 (8 bytes, where the text
    SQLAlchemy writes by default takes 26, in every row and every index entry that holds one)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        return dialect.type_descriptor(BigInteger() if dialect.name == "sqlite" else DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | int | None:
        if value is None:
            return None
        value = value.astimezone(UTC)
        return (value - EPOCH) // MICROSECOND if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | int | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return EPOCH + value * MICROSECOND if isinstance(value, int) else value.astimezone(UTC)


class _UuidBytes(TypeDecorator[UUID]):
    """A UUID as its 16 bytes, for SQLite, where SQLAlchemy's default is 32 hexadecimal
    characters. Both sort alike, so keyset pages walk ids in the same order on either engine."""

    impl = LargeBinary(16)
    cache_ok = True

    def process_bind_param(self, value: UUID | str | None, dialect: Dialect) -> bytes | None:
        if value is None:
            return None
        return (value if isinstance(value, UUID) else UUID(value)).bytes

    def process_result_value(self, value: bytes | None, dialect: Dialect) -> UUID | None:
        return None if value is None else _uuid(bytes(value))


@lru_cache(maxsize=4096)
def _uuid(raw: bytes) -> UUID:
    """The UUID of these 16 bytes, made once for an id read again and again (a profile's in each
    of its transactions, an app's in every row): making one costs several times a lookup."""
    return UUID(bytes=raw)


Uuid = NativeUuid().with_variant(_UuidBytes(), "sqlite")


# Text searched by prefix (core.sql.starts_with) as a range of an index: in byte order on both
# engines (SQLite's default collation; PostgreSQL's "C", which a linguistic database default is not).
Searchable = String(255).with_variant(String(255, collation="C"), "postgresql")

# PostgreSQL's json (not jsonb): it keeps the key order, which the wire format depends on.
Json = JSON()


class PackedJson(TypeDecorator[Any]):
    """JSON that only Python reads (no query looks inside), kept compressed (core.packing)."""

    impl = LargeBinary
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> bytes | None:
        return None if value is None else pack(value)

    def process_result_value(self, value: bytes | None, dialect: Dialect) -> Any:
        return None if value is None else unpack(value)


class Money(TypeDecorator[Decimal]):
    """Exact amounts as integer millionths, the same on every engine (SQLite has no exact decimal)."""

    impl = BigInteger
    cache_ok = True
    SCALE = Decimal(1_000_000)

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> int | None:
        return None if value is None else int((Decimal(value) * self.SCALE).to_integral_value(ROUND_HALF_EVEN))

    def process_result_value(self, value: int | None, dialect: Dialect) -> Decimal | None:
        return None if value is None else Decimal(value) / self.SCALE


apps = Table(
    "apps",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("name", String(255), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    # Revenue figures in events: the store keeps 15% instead of 30% from small businesses.
    Column("small_business", Boolean, nullable=False, server_default=false()),
    # Sales tax (VAT) included in prices, as a fraction: 0.2 for 20%.
    Column("tax_rate", Money, nullable=False, server_default=text("0")),
    # Requests per second the app's keys may make, all server processes together; None: no limit.
    Column("rate_limit", Integer),
    # The "still active" events: days after a trial or a subscription starts, trial_active or
    # subscription_active fires if it has not ended by then; None: never.
    Column("trial_active_after_days", Integer),
    Column("subscription_active_after_days", Integer),
    # The contract's virtual currency endpoints answer 403 feature_not_enabled while this is off.
    Column("virtual_currencies", Boolean, nullable=False, server_default=false()),
    # Moves on with every change to the app's configuration (see core/app_config.py).
    Column("config_version", Integer, nullable=False, server_default=text("0")),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("app_id", Uuid, ForeignKey("apps.id", ondelete="CASCADE"), nullable=False, index=True),
    # SHA-256 of the secret; the secret itself is shown once and never stored.
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("key_prefix", String(24), nullable=False),
    # secret: the server-side APIs; public: the Web API alone, called from browsers.
    Column("kind", String(8), nullable=False, server_default="secret"),
    Column("created_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime),
    CheckConstraint("kind IN ('secret', 'public')", name="kind"),
)


def _app_buckets(name: str) -> Table:
    """Each rate-limited app's token bucket for one limit, shared by every server process of the
    database (see core/buckets.py and apps.service.RateLimits): kept as the one moment it will be
    full again, in seconds since the epoch, so that taking requests from it is a single value's update."""
    return Table(
        name,
        metadata,
        Column("app_id", Uuid, ForeignKey("apps.id", ondelete="CASCADE"), primary_key=True),
        Column("full_at", Double, nullable=False),
    )


rate_buckets = _app_buckets("rate_buckets")  # the app's own limit on its API requests

profiles = Table(
    "profiles",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("app_id", Uuid, ForeignKey("apps.id", ondelete="CASCADE"), nullable=False),
    Column("customer_user_id", Searchable),
    Column("first_name", String(255)),
    Column("last_name", String(255)),
    Column("gender", String(1)),
    Column("email", Searchable),
    Column("phone_number", String(255)),
    Column("birthday", Date),
    Column("ip_country", String(2)),
    Column("store_country", String(255)),
    Column("store", String(255)),
    Column("ip_v4_address", String(45)),
    Column("store_account_token", Uuid),
    Column("att_status", SmallInteger),  # App Tracking Transparency: 0 to 3
    Column("integration_ids", Json),  # {"appsflyer_id": ..., ...}: those set, or None
    # The latest attribution of each source ({"custom": {"status", "channel", ...}}); history in attributions.
    Column("attribution", Json),
    Column("analytics_disabled", Boolean, nullable=False, default=False),
    Column("custom_attributes", Json, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    # The last response ``timestamp`` a write issued; later responses start above it.
    Column("last_timestamp_ms", BigInteger, nullable=False),
    # Derived from the ledger (purchases.rules.derive) on every ledger change;
    # never edited otherwise. ``subledger verify`` recomputes and compares.
    Column("derived", PackedJson),  # what the ledger gives the profile (purchases.rules.Derived)
    Column("total_revenue_usd", Money, nullable=False, default=0),
    # The generation of exchange rates (ledger_pricing) that total_revenue_usd and the
    # profile's share of the metric rollups were computed at.
    Column("rates_generation", Integer, nullable=False, server_default=text("0")),
    UniqueConstraint("app_id", "customer_user_id"),
    Index(None, "app_id", "email"),  # the dashboard's search
    Index(None, "app_id", "created_at"),
    Index(None, "app_id", "id"),  # walking an app's profiles page by page (export, verify, rebuilds)
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
    Column("user_agent", String(1024)),
    Column("app_build", String(255)),
    Column("app_version", String(255)),
    Column("adapty_sdk_version", String(255)),
    Column("idfa", String(255)),
    Column("idfv", String(255)),
    Column("advertising_id", String(255)),
    Column("android_id", String(255)),
    Column("android_app_set_id", String(255)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)


# Marketing attribution a profile was given (the Web API's), every one kept; the latest of
# each source is the profile's current one (profiles.attribution).
attributions = Table(
    "attributions",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("app_id", Uuid, ForeignKey("apps.id", ondelete="CASCADE"), nullable=False),
    Column("profile_id", Uuid, ForeignKey("profiles.id", ondelete="CASCADE"), nullable=False),
    Column("source", String(32), nullable=False),
    Column("status", String(16), nullable=False),  # organic, non_organic, unknown
    Column("attribution_user_id", String(255)),
    Column("channel", String(255)),
    Column("campaign", String(255)),
    Column("ad_group", String(255)),
    Column("ad_set", String(255)),
    Column("creative", String(255)),
    Column("created_at", UTCDateTime, nullable=False),
    Index(None, "profile_id", "created_at"),
)

# The origins whose pages may call an app's Web API from a browser ("*": any).
web_api_origins = Table(
    "web_api_origins",
    metadata,
    Column("app_id", Uuid, ForeignKey("apps.id", ondelete="CASCADE"), primary_key=True),
    Column("origin", String(255), primary_key=True),
    Index(None, "origin"),
)

# Catalog: what an app sells and what it unlocks -------------------------------

access_levels = Table(
    "access_levels",
    metadata,
    Column("app_id", Uuid, ForeignKey("apps.id", ondelete="CASCADE"), primary_key=True),
    Column("id", String(255), primary_key=True),
    Column("created_at", UTCDateTime, nullable=False),
)

products = Table(
    "products",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("app_id", Uuid, ForeignKey("apps.id", ondelete="CASCADE"), nullable=False),
    Column("store", String(255), nullable=False),
    Column("store_product_id", String(255), nullable=False),
    # "" matches every base plan of the product; a named plan wins over it.
    Column("store_base_plan_id", String(255), nullable=False),
    Column("access_level_id", String(255)),
    # ISO 8601 duration ("P1M", "P1Y", ...) or "lifetime".
    Column("period", String(16), nullable=False),
    Column("is_consumable", Boolean, nullable=False),
    Column("title", String(255)),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("app_id", "store", "store_product_id", "store_base_plan_id"),
)

exchange_rates = Table(
    "exchange_rates",
    metadata,
    Column("currency", String(3), primary_key=True),
    Column("usd_per_unit", String(40), nullable=False),  # a decimal, kept exact as text
    Column("as_of", Date, nullable=False),
)

# The exchange rates the ledger's USD figures (profiles' total_revenue_usd, the metric
# rollups) are computed at: one row, none before the first computation. New rates start a
# generation; while profiles of earlier ones remain, ``previous_rates`` holds the rates
# they were computed at (see purchases.repricing.finish_repricing).
ledger_pricing = Table(
    "ledger_pricing",
    metadata,
    Column("rates_digest", String(64), primary_key=True),
    Column("rates", Json),  # {currency: usd_per_unit}; None in a row written before it was kept
    Column("generation", Integer, nullable=False, server_default=text("0")),
    Column("previous_rates", Json),
)

# The ledger: appended to, and updated only by the store re-sending a transaction -

transactions = Table(
    "transactions",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("app_id", Uuid, ForeignKey("apps.id", ondelete="CASCADE"), nullable=False),
    Column("profile_id", Uuid, ForeignKey("profiles.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("purchase_type", String(32), nullable=False),
    Column("store", String(255), nullable=False),
    Column("environment", String(16), nullable=False),
    Column("store_product_id", String(255), nullable=False),
    Column("store_base_plan_id", String(255)),
    Column("store_transaction_id", String(255), nullable=False),
    Column("store_original_transaction_id", String(255), nullable=False),
    Column("offer_category", String(32)),
    Column("offer_type", String(32)),
    Column("offer_id", String(255)),
    Column("is_family_shared", Boolean, nullable=False),
    Column("price_country", String(2), nullable=False),
    Column("price_currency", String(3), nullable=False),
    Column("price_value", Money, nullable=False),
    Column("purchased_at", UTCDateTime, nullable=False),
    Column("refunded_at", UTCDateTime),
    Column("cancellation_reason", String(64)),
    Column("variation_id", String(255)),
    Column("originally_purchased_at", UTCDateTime),
    Column("expires_at", UTCDateTime),
    Column("renew_status", Boolean),
    Column("renew_status_changed_at", UTCDateTime),
    Column("billing_issue_detected_at", UTCDateTime),
    Column("grace_period_expires_at", UTCDateTime),
    # What only a store's own account of a transaction carries (stores.schemas.StoreTransaction):
    # Google Play's purchase token, and when the subscription was paused or its renewal deferred.
    Column("store_purchase_token", String(4096)),
    Column("paused_at", UTCDateTime),
    Column("deferred_at", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("app_id", "store", "store_transaction_id"),
    Index(None, "app_id", "store", "store_original_transaction_id"),
)

access_grants = Table(
    "access_grants",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("app_id", Uuid, ForeignKey("apps.id", ondelete="CASCADE"), nullable=False),
    Column("profile_id", Uuid, ForeignKey("profiles.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("access_level_id", String(255), nullable=False),
    Column("kind", String(8), nullable=False),
    # A grant opens [starts_at, expires_at); a revocation closes the level at starts_at.
    Column("starts_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime),
    # What the grant stands for, when the caller names it (legacy API); else store "adapty".
    Column("store", String(255)),
    Column("store_product_id", String(255)),
    Column("store_base_plan_id", String(255)),
    Column("store_transaction_id", String(255)),
    Column("store_original_transaction_id", String(255)),
    Column("environment", String(16)),
    Column("created_at", UTCDateTime, nullable=False),
    CheckConstraint("kind IN ('grant', 'revoke')", name="kind"),
)

# Events: the outbox, written in the transaction of the change that causes them ---

events = Table(
    "events",
    metadata,
    # Feed order and cursor; increases with every event across the database.
    Column("sequence", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("id", Uuid, nullable=False, unique=True, insert_sentinel=True),  # profile_event_id
    Column("app_id", Uuid, ForeignKey("apps.id", ondelete="CASCADE"), nullable=False),
    # No foreign key: the events of a deleted profile (profile_deleted among them) outlive it.
    Column("profile_id", Uuid, nullable=False),
    Column("customer_user_id", String(255)),
    Column("event_type", String(64), nullable=False),
    Column("event_datetime", UTCDateTime, nullable=False),
    Column("payload", Json, nullable=False),  # the webhook body, as delivered
    Column("created_at", UTCDateTime, nullable=False),
    Index(None, "app_id", "sequence"),
    Index(None, "app_id", "profile_id", "sequence"),
)

webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("app_id", Uuid, ForeignKey("apps.id", ondelete="CASCADE"), nullable=False, index=True),
    # Production events go to ``url``, sandbox ones to ``sandbox_url``; an endpoint may have one of the two.
    Column("url", String(2048)),
    Column("sandbox_url", String(2048)),
    Column("event_types", Json, nullable=False),  # the types it receives
    Column("event_names", Json),  # {event type: the name the receiver gets instead}
    # Sealed with the server's secret key (core.secrets); never stored in the clear.
    Column("authorization_header", String(2048)),
    Column("sandbox_authorization_header", String(2048)),
    Column("signing_secret", String(512), nullable=False),
    # The reference's options: what the body carries, and which events are sent.
    Column("send_trial_price", Boolean, nullable=False, server_default=false()),
    Column("exclude_historical_events", Boolean, nullable=False, server_default=false()),
    Column("send_user_attributes", Boolean, nullable=False, server_default=true()),
    Column("send_attribution", Boolean, nullable=False, server_default=true()),
    Column("send_play_store_purchase_token", Boolean, nullable=False, server_default=false()),
    Column("created_at", UTCDateTime, nullable=False),
    CheckConstraint("url IS NOT NULL OR sandbox_url IS NOT NULL", name="a_url"),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("event_sequence", BigInteger, ForeignKey("events.sequence", ondelete="CASCADE"), nullable=False),
    Column("endpoint_id", Uuid, ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), nullable=False),
    Column("profile_id", Uuid, nullable=False),
    # pending; delivered (2xx); refused (the receiver answered 3xx or 400-404: not retried);
    # dead (retried for the whole window in vain)
    Column("status", String(16), nullable=False),
    Column("target", String(16), nullable=False, server_default="production"),  # which of the endpoint's URLs
    Column("attempts", Integer, nullable=False),
    Column("first_attempt_at", UTCDateTime),  # the retry window runs from here
    Column("next_attempt_at", UTCDateTime, nullable=False),
    # A worker that claims a delivery holds it until then; a killed worker's claim lapses.
    Column("claimed_until", UTCDateTime),
    Column("last_status_code", Integer),
    Column("last_error", String(1024)),
    Column("delivered_at", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("event_sequence", "endpoint_id"),
    Index(None, "status", "next_attempt_at"),
    Index(None, "endpoint_id", "profile_id", "status", "event_sequence"),
    CheckConstraint("status IN ('pending', 'delivered', 'refused', 'dead')", name="status"),
    CheckConstraint("target IN ('production', 'sandbox')", name="target"),
)

delivery_attempts = Table(
    "delivery_attempts",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("delivery_id", Uuid, ForeignKey("deliveries.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("attempted_at", UTCDateTime, nullable=False),
    Column("status_code", Integer),
    Column("error", String(1024)),
    Column("duration_ms", Integer, nullable=False),
)

# Expiry events fire when the time passes: one row per subscription chain.
scheduled_expiries = Table(
    "scheduled_expiries",
    metadata,
    Column("profile_id", Uuid, ForeignKey("profiles.id", ondelete="CASCADE"), primary_key=True),
    Column("store", String(255), primary_key=True),
    Column("store_original_transaction_id", String(255), primary_key=True),
    Column("app_id", Uuid, ForeignKey("apps.id", ondelete="CASCADE"), nullable=False),
    Column("due_at", UTCDateTime, nullable=False),
    Column("fired", Boolean, nullable=False),
    Index(None, "fired", "due_at"),
)

# A "still active" event to fire if the trial or subscription of a chain has not ended by ``due_at``.
scheduled_checks = Table(
    "scheduled_checks",
    metadata,
    Column("profile_id", Uuid, ForeignKey("profiles.id", ondelete="CASCADE"), primary_key=True),
    Column("store", String(255), primary_key=True),
    Column("store_original_transaction_id", String(255), primary_key=True),
    Column("event_type", String(32), primary_key=True),  # trial_active, subscription_active
    Column("app_id", Uuid, ForeignKey("apps.id", ondelete="CASCADE"), nullable=False),
    Column("due_at", UTCDateTime, nullable=False),
    Column("fired", Boolean, nullable=False),
    Index(None, "fired", "due_at"),
)

# Paywalls, placements, audiences and A/B tests ---------------------------------

paywalls = Table(
    "paywalls",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("app_id", Uuid, ForeignKey("apps.id", ondelete="CASCADE"), nullable=False),
    Column("title", String(255), nullable=False),
    Column("product_ids", Json, nullable=False),  # products.id values, in the order shown
    Column("remote_configs", Json, nullable=False),  # {"en": {...}, "fr": {...}}
    Column("state", String(16), nullable=False),  # draft, live, inactive, archived (paywalls.rules)
    Column("web_purchase_url", String(2048)),
    # The variation a profile sees when the paywall is shown outside an A/B test.
    Column("variation_id", Uuid, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index(None, "app_id", "created_at"),
    CheckConstraint("state IN ('draft', 'live', 'inactive', 'archived')", name="state"),
)

audiences = Table(
    "audiences",
    metadata,
    Column("app_id", Uuid, ForeignKey("apps.id", ondelete="CASCADE"), primary_key=True),
    Column("id", String(255), primary_key=True),
    Column("rules", Json, nullable=False),  # every rule must match
    Column("created_at", UTCDateTime, nullable=False),
)

ab_tests = Table(
    "ab_tests",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("app_id", Uuid, ForeignKey("apps.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("name", String(255), nullable=False),
    Column("variations", Json, nullable=False),  # [{"variation_id", "paywall_id", "weight"}]
    Column("created_at", UTCDateTime, nullable=False),
)

placements = Table(
    "placements",
    metadata,
    Column("app_id", Uuid, ForeignKey("apps.id", ondelete="CASCADE"), primary_key=True),
    Column("id", String(255), primary_key=True),
    # In priority order: [{"audience_id" (null: everyone), "paywall_id" | "ab_test_id"}]
    Column("targets", Json, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

paywall_views = Table(
    "paywall_views",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("app_id", Uuid, ForeignKey("apps.id", ondelete="CASCADE"), nullable=False),
    Column("profile_id", Uuid, ForeignKey("profiles.id", ondelete="CASCADE"), nullable=False),
    Column("placement_id", String(255)),  # None: the view named only its variation (the Web API)
    Column("paywall_id", Uuid, nullable=False),
    Column("variation_id", Uuid, nullable=False),
    Column("store", String(255)),
    Column("viewed_at", UTCDateTime, nullable=False),
    Index(None, "app_id", "variation_id"),
    Index(None, "profile_id", "viewed_at"),  # a profile's first view (the Export Analytics API)
)

# Refund Saver: answering the App Store's consumption requests --------------------

# An app's Refund Saver: whether it answers, the preference it gives Apple by default, and whether a
# profile that never said is taken to consent (opt_out) or not (opt_in). No row: off, the defaults.
refund_saver_apps = Table(
    "refund_saver_apps",
    metadata,
    Column("app_id", Uuid, ForeignKey("apps.id", ondelete="CASCADE"), primary_key=True),
    Column("enabled", Boolean, nullable=False),
    Column("default_preference", String(16), nullable=False),
    Column("consent_policy", String(8), nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

# What a profile said: its own preference (None: the app's default) and consent (None: not said).
refund_saver_profiles = Table(
    "refund_saver_profiles",
    metadata,
    Column("profile_id", Uuid, ForeignKey("profiles.id", ondelete="CASCADE"), primary_key=True),
    Column("custom_preference", String(16)),
    Column("consent", Boolean),
    Column("updated_at", UTCDateTime, nullable=False),
)

# Every consumption request received, and what was answered (the Refund Saver's audit log).
consumption_requests = Table(
    "consumption_requests",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("app_id", Uuid, ForeignKey("apps.id", ondelete="CASCADE"), nullable=False),
    Column("notification_id", String(255), nullable=False),
    Column("store_transaction_id", String(255), nullable=False),
    Column("profile_id", Uuid, ForeignKey("profiles.id", ondelete="SET NULL")),
    Column("received_at", UTCDateTime, nullable=False),
    Column("answered", Boolean, nullable=False),
    Column("refund_preference", String(16)),  # as sent: decline, grant, grant_prorated; None: no preference
    Column("consumption_percentage", Integer),  # in milliunits, as sent
    Column("note", String(1024), nullable=False),
    UniqueConstraint("app_id", "notification_id"),
    Index(None, "app_id", "store_transaction_id"),
)

# Store integrations ---------------------------------------------------------------

# How subledger talks to a store for an app: plain settings, and secrets sealed (core.secrets).
store_configs = Table(
    "store_configs",
    metadata,
    Column("app_id", Uuid, ForeignKey("apps.id", ondelete="CASCADE"), primary_key=True),
    Column("store", String(32), primary_key=True),
    Column("settings", Json, nullable=False),
    Column("secrets", Json, nullable=False),  # {name: sealed value}
    Column("updated_at", UTCDateTime, nullable=False),
)

# A verified store notification on its way, as the store sent it, to the URL the app's settings for
# that store name (``forward_url``): delivered and retried as webhook deliveries are.
store_forwards = Table(
    "store_forwards",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("app_id", Uuid, ForeignKey("apps.id", ondelete="CASCADE"), nullable=False),
    Column("store", String(32), nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("status", String(16), nullable=False),  # as a delivery's
    Column("attempts", Integer, nullable=False),
    Column("first_attempt_at", UTCDateTime),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("claimed_until", UTCDateTime),
    Column("last_status_code", Integer),
    Column("last_error", String(1024)),
    Column("delivered_at", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    Index(None, "status", "next_attempt_at"),
    CheckConstraint("status IN ('pending', 'delivered', 'refused', 'dead')", name="status"),
)

# Every verified notification a store sent, once (a replay is found by its id and changes nothing).
store_notifications = Table(
    "store_notifications",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("app_id", Uuid, ForeignKey("apps.id", ondelete="CASCADE"), nullable=False),
    Column("store", String(32), nullable=False),
    Column("notification_id", String(255), nullable=False),  # the store's own id of the notification
    Column("kind", String(255), nullable=False),  # the store's type (and subtype)
    Column("signed_at", UTCDateTime, nullable=False),  # when the store says it happened
    Column("received_at", UTCDateTime, nullable=False),
    # applied; pending (its user is not known yet); stale (a later one was applied first); ignored
    Column("status", String(16), nullable=False),
    Column("note", String(1024)),
    # What ties it to a profile: the subscription chain, and the app's own account id of the user.
    Column("original_transaction_id", String(255)),
    Column("account", String(255)),
    Column("profile_id", Uuid, ForeignKey("profiles.id", ondelete="SET NULL")),
    # The store's account of the transactions (set-transaction bodies) and refunds {transaction id: when}.
    Column("transactions", Json, nullable=False),
    Column("refunds", Json, nullable=False),
    Column("applied_at", UTCDateTime),
    UniqueConstraint("app_id", "store", "notification_id"),
    Index(None, "status", "received_at"),
    Index(None, "app_id", "store", "original_transaction_id"),
    CheckConstraint("status IN ('applied', 'pending', 'stale', 'ignored')", name="status"),
)

# The audit log of store requests that failed verification: they never touch the ledger.
refused_notifications = Table(
    "refused_notifications",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("app_id", Uuid, ForeignKey("apps.id", ondelete="CASCADE"), nullable=False),
    Column("store", String(32), nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    Column("reason", String(1024), nullable=False),
    Column("remote_address", String(64)),
    Column("body_sha256", String(64), nullable=False),
    Column("body_excerpt", Text, nullable=False),  # the first few KiB, for a human to look at
    Index(None, "app_id", "received_at"),
    Index(None, "app_id", "remote_address", "received_at"),  # the throttle per client address
)

# How many store requests each app refused, those the audit log did not keep included.
refused_counts = Table(
    "refused_counts",
    metadata,
    Column("app_id", Uuid, ForeignKey("apps.id", ondelete="CASCADE"), primary_key=True),
    Column("refused", BigInteger, nullable=False),
    Column("not_kept", BigInteger, nullable=False),  # throttled, or dropped as the log's oldest
)

# The dashboard -----------------------------------------------------------------------

# People who run this server and may use the dashboard (made with `subledger operators create`).
operators = Table(
    "operators",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("email", String(255), nullable=False, unique=True),
    Column("password_hash", String(255), nullable=False),  # argon2id
    Column("created_at", UTCDateTime, nullable=False),
    # owner: everything; analyst: reads every page, changes nothing.
    Column("role", String(16), nullable=False, server_default=text("'owner'")),
)

# What operators did through the dashboard: every form posted to an app's pages, who posted it,
# and how it was answered (a refusal too). Kept with the operator's email, which outlives them.
operator_actions = Table(
    "operator_actions",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("app_id", Uuid, ForeignKey("apps.id", ondelete="CASCADE"), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("operator_email", String(255), nullable=False),
    Column("action", String(255), nullable=False),  # the form's route: POST /apps/{app_id}/catalog/products/
    Column("path", String(1024), nullable=False),
    Column("status", SmallInteger, nullable=False),  # the answer's HTTP status
    Column("details", Json, nullable=False),  # the form's fields, without tokens and secrets
    Index("ix_operator_actions_app_id_id", "app_id", "id"),
)

# Signed-in dashboard sessions; the cookie holds a random token, the table its SHA-256.
dashboard_sessions = Table(
    "dashboard_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("operator_id", Uuid, ForeignKey("operators.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
)

# Sign-in attempts per email and client address, a token bucket shared by every server
# process (see core/buckets.py). A full bucket is the same as none: those rows are deleted.
sign_in_buckets = Table(
    "sign_in_buckets",
    metadata,
    Column("email", String(255), primary_key=True),
    Column("address", String(255), primary_key=True),
    Column("full_at", Double, nullable=False, index=True),
)

# Virtual currencies ---------------------------------------------------------------
# Coins, credits, gems: balances per profile, changed only by transactions that keep their
# history, so that a balance always equals the sum of its currency's items.

virtual_currencies = Table(
    "virtual_currencies",
    metadata,
    Column("app_id", Uuid, ForeignKey("apps.id", ondelete="CASCADE"), primary_key=True),
    Column("code", String(30), primary_key=True),
    Column("name", String(255), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

currency_rate_buckets = _app_buckets("currency_rate_buckets")  # the virtual currency endpoints' limit
client_api_rate_buckets = _app_buckets("client_api_rate_buckets")  # the Export Analytics API's limit

currency_balances = Table(
    "currency_balances",
    metadata,
    Column("profile_id", Uuid, ForeignKey("profiles.id", ondelete="CASCADE"), primary_key=True),
    Column("currency_code", String(30), primary_key=True),
    Column("balance", BigInteger, nullable=False),
    CheckConstraint("balance >= 0", name="balance"),
)

currency_transactions = Table(
    "currency_transactions",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("app_id", Uuid, ForeignKey("apps.id", ondelete="CASCADE"), nullable=False),
    Column("profile_id", Uuid, ForeignKey("profiles.id", ondelete="CASCADE"), nullable=False),
    # store_purchase, subscription_renewal, api_transaction, dashboard_transaction, refund, ...
    Column("transaction_type", String(32), nullable=False),
    Column("meta", Json),
    # The ledger transaction ("store:store_transaction_id") a purchase credit or a refund
    # debit came from: each is applied once.
    Column("source", String(300)),
    Column("created_at", UTCDateTime, nullable=False),
    Index(None, "profile_id", "created_at", "id"),
    UniqueConstraint("profile_id", "source", "transaction_type"),
)

currency_transaction_items = Table(
    "currency_transaction_items",
    metadata,
    Column("transaction_id", Uuid, ForeignKey("currency_transactions.id", ondelete="CASCADE"), primary_key=True),
    Column("currency_code", String(30), primary_key=True),
    Column("amount", BigInteger, nullable=False),
    Column("balance_after", BigInteger, nullable=False),
)

# What buying a product credits (each renewal of a subscription again).
product_currency_grants = Table(
    "product_currency_grants",
    metadata,
    Column("product_id", Uuid, ForeignKey("products.id", ondelete="CASCADE"), primary_key=True),
    Column("currency_code", String(30), primary_key=True),
    Column("amount", Integer, nullable=False),
    CheckConstraint("amount > 0", name="amount"),
)

# Idempotency keys of the API's writes (see core/idempotency.py): the first request with a key
# claims it; its answer is kept for those that repeat it.
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("app_id", Uuid, ForeignKey("apps.id", ondelete="CASCADE"), primary_key=True),
    # SHA-256 of the key with the profile the request names: a key is scoped to one profile.
    Column("key_digest", String(64), primary_key=True),
    # SHA-256 of the request (method, path, query, body): the same key for another is refused.
    Column("request_digest", String(64), nullable=False),
    Column("owner", Uuid, nullable=False),
    # running: claimed; applied: its write committed; done: its answer is kept.
    Column("state", String(8), nullable=False),
    Column("status_code", Integer),
    Column("content_type", String(255)),
    Column("body", LargeBinary),
    Column("created_at", UTCDateTime, nullable=False, index=True),
    CheckConstraint("state IN ('running', 'applied', 'done')", name="state"),
)

# Metric rollups --------------------------------------------------------------------
# What each profile's ledger adds to the app's metrics, summed by day and by the
# store, product, country and environment the figure is attributed to (see
# metrics/rollup.py). Every ledger write applies its profile's difference in the
# same transaction, so a metrics query sums days instead of reading the ledger.
# Money is in nano-dollars (USD x 10^9). A row is kept in ROLLUP_SHARDS parts (``shard``),
# each profile adding to its own part: on PostgreSQL a writer locks the rows it adds to
# until it commits, and writers of different profiles seldom wait for each other this way.
# Queries sum the parts.

ROLLUP_SHARDS = 16


def _rollup_key(primary_key: bool = False) -> list[Column[str]]:
    return [
        Column("store", String(255), primary_key=primary_key, nullable=False),
        Column("product", String(255), primary_key=primary_key, nullable=False),
        Column("country", String(2), primary_key=primary_key, nullable=False),
        Column("environment", String(16), primary_key=primary_key, nullable=False),
    ]


DAY_MEASURES = (
    "gross",  # paid purchases made that day
    "refunds",  # paid purchases refunded that day
    "purchases",
    "refunded",
    "new_subscriptions",  # subscriptions whose first paid transaction was that day
    "new_trials",
    "trial_conversions",  # of the trials started that day, those paid for since
    "churned",  # subscriptions whose paid coverage ended for good that day
    "paid_change",  # subscriptions covered by a paid transaction at the end of the day, minus the day before
    "mrr_change",
    "trial_change",
)

metric_days = Table(
    "metric_days",
    metadata,
    Column("app_id", Uuid, ForeignKey("apps.id", ondelete="CASCADE"), primary_key=True),
    Column("day", Date, primary_key=True),
    *_rollup_key(primary_key=True),
    Column("shard", SmallInteger, primary_key=True),
    *[Column(name, BigInteger, nullable=False) for name in DAY_MEASURES],
)

# Profiles with a paid purchase in a day, week or month, for every pattern of the key
# ("*" matching any value): distinct counts do not add up across days or keys.
metric_payers = Table(
    "metric_payers",
    metadata,
    Column("app_id", Uuid, ForeignKey("apps.id", ondelete="CASCADE"), primary_key=True),
    Column("period", String(5), primary_key=True),
    *_rollup_key(primary_key=True),
    Column("bucket", Date, primary_key=True),
    Column("shard", SmallInteger, primary_key=True),
    Column("profiles", BigInteger, nullable=False),
)

# Subscriptions by month of first payment, and by the months after it they were paid for.
metric_cohorts = Table(
    "metric_cohorts",
    metadata,
    Column("app_id", Uuid, ForeignKey("apps.id", ondelete="CASCADE"), primary_key=True),
    Column("cohort", Date, primary_key=True),
    Column("month_offset", Integer, primary_key=True),
    *_rollup_key(primary_key=True),
    Column("shard", SmallInteger, primary_key=True),
    Column("covered", BigInteger, nullable=False),  # paid for in that month
    Column("onward", BigInteger, nullable=False),  # paid for from that month on, for ever
)

# The coverage of each profile that ends after the day before its last write (or never):
# how the current day's counts move between midnight and now.
metric_coverage = Table(
    "metric_coverage",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("app_id", Uuid, ForeignKey("apps.id", ondelete="CASCADE"), nullable=False),
    Column("profile_id", Uuid, ForeignKey("profiles.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("kind", String(8), nullable=False),  # paid, trial, or churn (the moment paid coverage ends for good)
    Column("starts_at", UTCDateTime, nullable=False),
    Column("ends_at", UTCDateTime),  # None: for ever
    Column("mrr", BigInteger, nullable=False),
    *_rollup_key(),
    Index(None, "app_id", "starts_at"),
    Index(None, "app_id", "ends_at"),
    CheckConstraint("kind IN ('paid', 'trial', 'churn')", name="kind"),
)

# Apps whose rollups must be rebuilt from their ledger (after an upgrade, or new exchange rates).
metric_rebuilds = Table(
    "metric_rebuilds",
    metadata,
    Column("app_id", Uuid, ForeignKey("apps.id", ondelete="CASCADE"), primary_key=True),
)
