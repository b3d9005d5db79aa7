"""SQL for profiles and installations."""

from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from sqlalchemy import ColumnElement, Connection, FromClause, and_, bindparam, delete, func, select, update

from subledger.core import app_config
from subledger.core.prepared import Prepared
from subledger.core.sql import upsert
from subledger.core.tables import apps, attributions, installations, ledger_pricing, profiles

if TYPE_CHECKING:
    from subledger.core.loop_reads import LoopReads

INSTALLATION_FIELDS = [c.name for c in installations.c if c.name not in {"profile_id", "created_at", "updated_at"}]


# A new profile starts at the generation of exchange rates in force (its ledger is empty,
# so any would do, but a repricing waits for every profile before that generation). The
# app's configuration version comes back with it: a write reads it before any of the
# configuration, and this saves that query a statement of its own.
_INSERT = Prepared(
    profiles.insert()
    .values(rates_generation=func.coalesce(select(ledger_pricing.c.generation).scalar_subquery(), 0))
    .returning(
        select(apps.c.config_version).where(apps.c.id == bindparam("version_of")).scalar_subquery().label("version"),
        profiles.c.rates_generation,
    )
)


def insert_profile(conn: Connection, values: dict[str, Any]) -> int:
    """Insert a profile: the generation of exchange rates it starts at."""
    (row,) = _INSERT.rows(conn, {**values, "version_of": values["app_id"]})  # an insert returns its row
    app_config.saw(conn, values["app_id"], row["version"])
    generation: int = row["rates_generation"]
    return generation


def _newest_first(table: FromClause) -> tuple[ColumnElement[Any], ColumnElement[Any]]:
    """The order of a profile's installations in which the first is its latest device."""
    return table.c.updated_at.desc(), table.c.device_id


# The hottest queries, built once: (by profile_id?, for update?) -> statement. A write
# locks the profile and reads, in the same statement, its app's configuration version
# and its latest device (which the events of a change carry).
_BY_ID = profiles.c.app_id == bindparam("app_id"), profiles.c.id == bindparam("key")
_BY_CUID = profiles.c.app_id == bindparam("app_id"), profiles.c.customer_user_id == bindparam("key")
_SEEN = installations.alias("seen")
_LATEST_DEVICE = (
    select(_SEEN.c.device_id)
    .where(_SEEN.c.profile_id == profiles.c.id)
    .order_by(*_newest_first(_SEEN))
    .limit(1)
    .correlate(profiles)
    .scalar_subquery()
)
_DEVICE = {f"device.{column.name}": column.name for column in installations.c}
_LOCKING = (
    select(profiles, apps.c.config_version, *(installations.c[name].label(label) for label, name in _DEVICE.items()))
    .join(apps, apps.c.id == profiles.c.app_id)
    .outerjoin(
        installations,
        and_(installations.c.profile_id == profiles.c.id, installations.c.device_id == _LATEST_DEVICE),
    )
)
_FIND = {
    (True, False): Prepared(select(profiles).where(*_BY_ID)),
    (True, True): Prepared(_LOCKING.where(*_BY_ID).with_for_update(of=profiles)),
    (False, False): Prepared(select(profiles).where(*_BY_CUID)),
    (False, True): Prepared(_LOCKING.where(*_BY_CUID).with_for_update(of=profiles)),
}


def find_profile(
    conn: Connection,
    app_id: UUID,
    profile_id: UUID | None = None,
    customer_user_id: str | None = None,
    for_update: bool = False,
) -> dict[str, Any] | None:
    """The app's profile with this id (preferred) or customer_user_id; None when absent.

    ``for_update`` locks it, and adds its ``latest_installation`` (None when it has none)
    as it was at that moment."""
    by_id = profile_id is not None
    profile = _FIND[by_id, for_update].first(conn, _find_params(app_id, profile_id, customer_user_id))
    if profile is None:
        return None
    if for_update:
        app_config.saw(conn, app_id, profile.pop("config_version"))
        device = {name: profile.pop(label) for label, name in _DEVICE.items()}
        profile["latest_installation"] = device if device["profile_id"] is not None else None
    return profile


async def find_profile_on_loop(
    reads: "LoopReads", app_id: UUID, profile_id: UUID | None = None, customer_user_id: str | None = None
) -> dict[str, Any] | None:
    """``find_profile`` (not for update) awaited on the event loop."""
    return await reads.first(_FIND[profile_id is not None, False], _find_params(app_id, profile_id, customer_user_id))


def _find_params(app_id: UUID, profile_id: UUID | None, customer_user_id: str | None) -> dict[str, Any]:
    return {"app_id": app_id, "key": profile_id if profile_id is not None else customer_user_id}


# Built once: the SET clause is compiled (and cached) for the columns each call passes.
_UPDATE_PROFILE = Prepared(update(profiles).where(profiles.c.id == bindparam("profile_key")))


def update_profile(conn: Connection, profile_id: UUID, values: dict[str, Any]) -> None:
    _UPDATE_PROFILE.rows(conn, {"profile_key": profile_id, **values})


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
        update=[field for field in INSTALLATION_FIELDS if field != "device_id"] + ["updated_at"],
    )


def clear_ad_ids(conn: Connection, profile_id: UUID, fields: tuple[str, ...]) -> None:
    conn.execute(update(installations).where(installations.c.profile_id == profile_id).values(dict.fromkeys(fields)))


_LATEST_INSTALLATION = (
    select(installations)
    .where(installations.c.profile_id == bindparam("profile_id"))
    .order_by(*_newest_first(installations))
    .limit(1)
)


def latest_installation(conn: Connection, profile_id: UUID) -> dict[str, Any] | None:
    row = conn.execute(_LATEST_INSTALLATION, {"profile_id": profile_id}).first()
    return dict(row._mapping) if row else None


def insert_attribution(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(attributions.insert(), values)
