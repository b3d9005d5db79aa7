"""The database as tests see it: a server process's own, and snapshots of every row."""

from subledger.config import Settings
from subledger.core.db import Database
from subledger.core.runtime import Runtime
from subledger.core.tables import metadata


def database_for(settings: Settings) -> Database:
    """A server process's database as the settings have it (no prepared statements behind a pooler)."""
    return Database(settings.sqlalchemy_url, prepared_statements=not settings.database_transaction_pooling)


# Rate limits count every request, refused ones too: their buckets are left out of snapshots.
RATE_BUCKETS = frozenset({"rate_buckets", "currency_rate_buckets", "client_api_rate_buckets"})


# The audit log of refused store requests, and their counts: what a refused request does write.
AUDIT_LOG = frozenset({"refused_notifications", "refused_counts"})


def db_snapshot(runtime: Runtime) -> dict[str, list]:
    """Every row of every table but the rate limits' buckets, to show that a rejected request
    changed nothing."""
    with runtime.db.read() as conn:
        return {
            table.name: sorted((tuple(row) for row in conn.execute(table.select())), key=repr)
            for table in metadata.sorted_tables
            if table.name not in RATE_BUCKETS
        }


def all_but_the_audit_log(runtime: Runtime) -> dict[str, list]:
    """``db_snapshot`` without the audit log of refused store requests."""
    return {name: rows for name, rows in db_snapshot(runtime).items() if name not in AUDIT_LOG}
