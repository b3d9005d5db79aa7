"""SQL for apps and API keys."""

from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import ColumnElement, Connection, ScalarSelect, Table, delete, func, or_, select, update

from subledger.apps import rules
from subledger.apps.rules import DEFAULT_ACCESS_LEVEL
from subledger.core import app_config, sql
from subledger.core.tables import access_levels, api_keys, apps, web_api_origins


def insert_app(conn: Connection, app_id: UUID, name: str, now: datetime) -> None:
    """A new app, with the access level every app has."""
    conn.execute(apps.insert().values(id=app_id, name=name, created_at=now))
    conn.execute(access_levels.insert().values(app_id=app_id, id=DEFAULT_ACCESS_LEVEL, created_at=now))


def insert_key(conn: Connection, app_id: UUID, key: str, kind: str, now: datetime) -> None:
    """Keep a new key of the app: its hash, and a prefix to tell it by."""
    conn.execute(
        api_keys.insert().values(
            id=uuid4(),
            app_id=app_id,
            key_hash=rules.hash_secret(key),
            key_prefix=rules.display_prefix(key),
            kind=kind,
            created_at=now,
        )
    )


def _in_force(now: datetime) -> ColumnElement[bool]:
    return or_(api_keys.c.revoked_at.is_(None), api_keys.c.revoked_at > now)


def keys_in_force(conn: Connection, app_id: UUID, now: datetime) -> list[dict[str, Any]]:
    """The app's keys that work now (never their hashes), secret ones first, newest first."""
    columns = (api_keys.c.kind, api_keys.c.key_prefix, api_keys.c.created_at, api_keys.c.revoked_at)
    query = (
        select(*columns)
        .where(api_keys.c.app_id == app_id, _in_force(now))
        .order_by(api_keys.c.kind.desc(), api_keys.c.created_at.desc())
    )
    return [dict(row._mapping) for row in conn.execute(query)]


def revoke_keys(conn: Connection, app_id: UUID, kind: str, at: datetime) -> int:
    """End the app's keys of this kind at ``at`` (those in force then: a key already due to end
    sooner keeps its end); how many."""
    revoking = update(api_keys).where(api_keys.c.app_id == app_id, api_keys.c.kind == kind, _in_force(at))
    return conn.execute(revoking.values(revoked_at=at)).rowcount


def app_exists(conn: Connection, app_id: UUID) -> bool:
    return conn.execute(select(apps.c.id).where(apps.c.id == app_id)).first() is not None


def update_app(conn: Connection, app_id: UUID, values: dict[str, Any]) -> None:
    conn.execute(update(apps).where(apps.c.id == app_id).values(values))
    app_config.changed(conn, app_id)


def find_app(conn: Connection, app_id: UUID) -> dict[str, Any]:
    return dict(conn.execute(select(apps).where(apps.c.id == app_id)).one()._mapping)


def list_apps(conn: Connection, now: datetime) -> list[dict[str, Any]]:
    """Every app with how many secret keys are in force, the newest one's prefix, and its
    public key's prefix."""
    in_force = select(api_keys).where(_in_force(now)).subquery()

    def newest(kind: str) -> ScalarSelect[Any]:
        return (
            select(in_force.c.key_prefix)
            .where(in_force.c.app_id == apps.c.id, in_force.c.kind == kind)
            .order_by(in_force.c.created_at.desc(), in_force.c.id)
            .limit(1)
            .scalar_subquery()
        )

    secret = in_force.c.kind == rules.SECRET
    count = select(func.count()).where(in_force.c.app_id == apps.c.id, secret).scalar_subquery()
    query = select(
        apps.c.id,
        apps.c.name,
        apps.c.created_at,
        count.label("active_keys"),
        newest(rules.SECRET).label("key_prefix"),
        newest(rules.PUBLIC).label("public_key_prefix"),
    ).order_by(apps.c.created_at, apps.c.id)
    return [dict(row._mapping) for row in conn.execute(query)]


def active_key(conn: Connection, key_hash: str, now: datetime) -> dict[str, Any] | None:
    """``app_id``, ``key_hash``, ``kind``, ``revoked_at`` (None, or when it ends) and the app's
    ``rate_limit`` of the key in force with this hash."""
    row = conn.execute(
        select(api_keys.c.app_id, api_keys.c.key_hash, api_keys.c.kind, api_keys.c.revoked_at, apps.c.rate_limit)
        .join(apps, apps.c.id == api_keys.c.app_id)
        .where(api_keys.c.key_hash == key_hash, _in_force(now))
    ).first()
    return dict(row._mapping) if row else None


def locked_bucket(conn: Connection, table: Table, app_id: UUID) -> float:
    """The ``full_at`` of the app's rate bucket in ``table``, its row locked until the transaction ends."""
    return sql.locked_bucket(conn, table, {"app_id": app_id})


def save_bucket(conn: Connection, table: Table, app_id: UUID, full_at: float) -> None:
    sql.save_bucket(conn, table, {"app_id": app_id}, full_at)


def web_origins(conn: Connection, app_id: UUID) -> list[str]:
    query = (
        select(web_api_origins.c.origin).where(web_api_origins.c.app_id == app_id).order_by(web_api_origins.c.origin)
    )
    return list(conn.scalars(query))


def set_web_origins(conn: Connection, app_id: UUID, origins: list[str]) -> None:
    conn.execute(delete(web_api_origins).where(web_api_origins.c.app_id == app_id))
    if origins:
        conn.execute(web_api_origins.insert(), [{"app_id": app_id, "origin": origin} for origin in origins])


def origin_known(conn: Connection, origin: str) -> bool:
    """Whether any app lets pages of this origin (or of any) call its Web API."""
    query = select(web_api_origins.c.app_id).where(web_api_origins.c.origin.in_([origin, rules.ANY_ORIGIN])).limit(1)
    return conn.execute(query).first() is not None
