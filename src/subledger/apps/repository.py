"""SQL for apps and API keys."""

from datetime import datetime
from uuid import UUID

from sqlalchemy import Connection, func, select, update

from subledger.core import app_config
from subledger.core.tables import api_keys, apps


def insert_app(conn: Connection, app_id: UUID, name: str, now: datetime) -> None:
    conn.execute(apps.insert().values(id=app_id, name=name, created_at=now))


def insert_key(conn: Connection, key_id: UUID, app_id: UUID, key_hash: str, prefix: str, now: datetime) -> None:
    conn.execute(
        api_keys.insert().values(id=key_id, app_id=app_id, key_hash=key_hash, key_prefix=prefix, created_at=now)
    )


def revoke_keys(conn: Connection, app_id: UUID, now: datetime) -> int:
    result = conn.execute(
        update(api_keys).where(api_keys.c.app_id == app_id, api_keys.c.revoked_at.is_(None)).values(revoked_at=now)
    )
    return result.rowcount


def app_exists(conn: Connection, app_id: UUID) -> bool:
    return conn.execute(select(apps.c.id).where(apps.c.id == app_id)).first() is not None


def update_app(conn: Connection, app_id: UUID, values: dict) -> None:
    conn.execute(update(apps).where(apps.c.id == app_id).values(values))
    app_config.changed(conn, app_id)


def find_app(conn: Connection, app_id: UUID) -> dict:
    return dict(conn.execute(select(apps).where(apps.c.id == app_id)).one()._mapping)


def list_apps(conn: Connection) -> list[dict]:
    active_keys = (
        select(
            api_keys.c.app_id, func.count().label("active_keys"), func.max(api_keys.c.key_prefix).label("key_prefix")
        )
        .where(api_keys.c.revoked_at.is_(None))
        .group_by(api_keys.c.app_id)
        .subquery()
    )
    query = (
        select(apps.c.id, apps.c.name, apps.c.created_at, active_keys.c.active_keys, active_keys.c.key_prefix)
        .select_from(apps.outerjoin(active_keys, active_keys.c.app_id == apps.c.id))
        .order_by(apps.c.created_at, apps.c.id)
    )
    return [dict(row._mapping) for row in conn.execute(query)]


def active_key(conn: Connection, key_hash: str) -> tuple[UUID, str, int | None] | None:
    """(app_id, stored hash, the app's rate limit) of the unrevoked key with this hash."""
    row = conn.execute(
        select(api_keys.c.app_id, api_keys.c.key_hash, apps.c.rate_limit)
        .join(apps, apps.c.id == api_keys.c.app_id)
        .where(api_keys.c.key_hash == key_hash, api_keys.c.revoked_at.is_(None))
    ).first()
    return (row.app_id, row.key_hash, row.rate_limit) if row else None
