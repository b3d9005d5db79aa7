"""SQL for profiles and installations."""

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, delete, select, update

from subledger.core.db import upsert
from subledger.core.tables import installations, profiles

INSTALLATION_FIELDS = [c.name for c in installations.c if c.name not in {"profile_id", "created_at", "updated_at"}]


def insert_profile(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(profiles.insert().values(values))


def find_profile(
    conn: Connection,
    app_id: UUID,
    profile_id: UUID | None = None,
    customer_user_id: str | None = None,
    for_update: bool = False,
) -> dict[str, Any] | None:
    """The app's profile with this id (preferred) or customer_user_id; None when absent."""
    query = select(profiles).where(profiles.c.app_id == app_id)
    if profile_id is not None:
        query = query.where(profiles.c.id == profile_id)
    else:
        query = query.where(profiles.c.customer_user_id == customer_user_id)
    if for_update:
        query = query.with_for_update()
    row = conn.execute(query).first()
    return dict(row._mapping) if row else None


def update_profile(conn: Connection, profile_id: UUID, values: dict[str, Any]) -> None:
    conn.execute(update(profiles).where(profiles.c.id == profile_id).values(values))


def delete_profile(conn: Connection, profile_id: UUID) -> None:
    # Children go with ON DELETE CASCADE; deleted explicitly too, so that SQLite
    # files whose connections ran without the foreign_keys pragma stay clean.
    conn.execute(delete(installations).where(installations.c.profile_id == profile_id))
    conn.execute(delete(profiles).where(profiles.c.id == profile_id))


def upsert_installation(conn: Connection, profile_id: UUID, values: dict[str, Any], now: datetime) -> None:
    """One row per (profile, device_id); the latest write replaces every field."""
    row = {field: values.get(field) for field in INSTALLATION_FIELDS}
    upsert(
        conn,
        installations,
        {**row, "profile_id": profile_id, "created_at": now, "updated_at": now},
        keys=["profile_id", "device_id"],
        update={**dict.fromkeys(field for field in INSTALLATION_FIELDS if field != "device_id"), "updated_at": now},
    )


def clear_ad_ids(conn: Connection, profile_id: UUID, fields: tuple[str, ...]) -> None:
    conn.execute(
        update(installations).where(installations.c.profile_id == profile_id).values(dict.fromkeys(fields))
    )
