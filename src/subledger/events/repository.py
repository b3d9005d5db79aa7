"""SQL for events, webhook endpoints, deliveries and scheduled expiries."""

from collections import Counter
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import ColumnElement, Connection, Table, and_, bindparam, delete, exists, func, or_, select, update
from sqlalchemy.orm import aliased

from subledger.core import app_config
from subledger.core.prepared import Prepared
from subledger.core.sql import insert_new, upsert
from subledger.core.tables import (
    ab_tests,
    apps,
    deliveries,
    delivery_attempts,
    events,
    paywall_views,
    paywalls,
    placements,
    scheduled_checks,
    scheduled_expiries,
    store_configs,
    store_forwards,
    webhook_endpoints,
)

_REVENUE_SETTINGS = select(apps.c.small_business, apps.c.tax_rate).where(apps.c.id == bindparam("app_id"))
_STILL_ACTIVE_DELAYS = select(apps.c.trial_active_after_days, apps.c.subscription_active_after_days).where(
    apps.c.id == bindparam("app_id")
)
_ENDPOINTS = (
    select(webhook_endpoints)
    .where(webhook_endpoints.c.app_id == bindparam("app_id"))
    .order_by(webhook_endpoints.c.created_at)
)


def app_revenue_settings(conn: Connection, app_id: UUID) -> tuple[bool, Any]:
    row = conn.execute(_REVENUE_SETTINGS, {"app_id": app_id}).one()
    return row.small_business, row.tax_rate


def still_active_delays(conn: Connection, app_id: UUID) -> dict[str, int]:
    """{"trial_active": days, "subscription_active": days}, for the ones the app asks for."""
    row = conn.execute(_STILL_ACTIVE_DELAYS, {"app_id": app_id}).one()
    found = {"trial_active": row.trial_active_after_days, "subscription_active": row.subscription_active_after_days}
    return {event_type: days for event_type, days in found.items() if days}


_INSERT_EVENTS = Prepared(events.insert())
_INSERT_NUMBERED_EVENTS = events.insert().returning(events.c.sequence, sort_by_parameter_order=True)


def insert_events(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Insert events, in the order given."""
    _INSERT_EVENTS.execute_many(conn, rows)


def insert_numbered_events(conn: Connection, rows: list[dict[str, Any]]) -> list[int]:
    """Insert events in one statement, in the order given; returns their sequence numbers
    (reading them back costs more than the insert itself)."""
    return list(conn.execute(_INSERT_NUMBERED_EVENTS, rows).scalars())


def endpoints_for(conn: Connection, app_id: UUID) -> list[dict[str, Any]]:
    return [dict(row._mapping) for row in conn.execute(_ENDPOINTS, {"app_id": app_id})]


def insert_deliveries(conn: Connection, rows: list[dict[str, Any]]) -> None:
    conn.execute(deliveries.insert(), rows)


def event_feed(
    conn: Connection,
    app_id: UUID,
    after: int | None,
    limit: int,
    profile_id: UUID | None,
    event_types: list[str] | None,
    since: datetime | None,
    until: datetime | None,
) -> list[dict[str, Any]]:
    query = select(events).where(events.c.app_id == app_id).order_by(events.c.sequence).limit(limit)
    if after is not None:
        query = query.where(events.c.sequence > after)
    if profile_id is not None:
        query = query.where(events.c.profile_id == profile_id)
    if event_types:
        query = query.where(events.c.event_type.in_(event_types))
    if since is not None:
        query = query.where(events.c.event_datetime >= since)
    if until is not None:
        query = query.where(events.c.event_datetime < until)
    return [dict(row._mapping) for row in conn.execute(query)]


def paywall_of(conn: Connection, app_id: UUID, profile_id: UUID, variation_id: str) -> dict[str, Any] | None:
    """What events say of the paywall a purchase was made on (``rules.NO_PAYWALL``'s fields):
    the paywall, or the A/B test, whose variation it is; the placement where the profile last
    saw it; and the audience that placement showed it to ("All Users" for everyone). None when
    the app has no such variation."""
    try:
        variation = UUID(variation_id)
    except ValueError:
        return None
    test = None
    paywall = conn.execute(
        select(paywalls.c.id, paywalls.c.title).where(paywalls.c.app_id == app_id, paywalls.c.variation_id == variation)
    ).first()
    if paywall is None:
        for row in conn.execute(select(ab_tests).where(ab_tests.c.app_id == app_id)):
            chosen = next((v for v in row.variations if v.get("variation_id") == str(variation)), None)
            if chosen is not None:
                test = row
                paywall = conn.execute(
                    select(paywalls.c.id, paywalls.c.title).where(
                        paywalls.c.app_id == app_id, paywalls.c.id == UUID(chosen["paywall_id"])
                    )
                ).first()
                break
    if paywall is None:
        return None
    placement_id = conn.scalar(
        select(paywall_views.c.placement_id)
        .where(
            paywall_views.c.profile_id == profile_id,
            paywall_views.c.variation_id == variation,
            paywall_views.c.placement_id.is_not(None),
        )
        .order_by(paywall_views.c.viewed_at.desc())
        .limit(1)
    )
    cohort = None
    if placement_id is not None:
        targets = conn.scalar(
            select(placements.c.targets).where(placements.c.app_id == app_id, placements.c.id == placement_id)
        )
        shown = str(test.id) if test is not None else str(paywall.id)
        key = "ab_test_id" if test is not None else "paywall_id"
        target = next((t for t in targets or [] if t.get(key) == shown), None)
        if target is not None:
            cohort = target.get("audience_id") or "All Users"
    return {
        "paywall_name": paywall.title,
        "paywall_revision": "1",  # paywalls have no revisions: the reference's default
        "ab_test_name": test.name if test is not None else None,
        "ab_test_revision": 1 if test is not None else None,
        "developer_id": placement_id,
        "cohort_name": cohort,
    }


# Endpoints ----------------------------------------------------------------------


def events_page(conn: Connection, app_id: UUID | None, after: int | None, limit: int) -> list[dict[str, Any]]:
    """A page of events in feed order: ``sequence``, ``created_at``, and ``undelivered``, whether
    one of its deliveries is still due or dead-lettered."""
    undelivered = exists().where(deliveries.c.event_sequence == events.c.sequence, deliveries.c.status != "delivered")
    query = (
        select(events.c.sequence, events.c.created_at, undelivered.label("undelivered"))
        .order_by(events.c.sequence)
        .limit(limit)
    )
    if app_id is not None:
        query = query.where(events.c.app_id == app_id)
    if after is not None:
        query = query.where(events.c.sequence > after)
    return [dict(row._mapping) for row in conn.execute(query)]


def delete_events(conn: Connection, sequences: list[int]) -> None:
    """Delete events; their deliveries and attempts go with them (ON DELETE CASCADE)."""
    if sequences:
        conn.execute(delete(events).where(events.c.sequence.in_(sequences)))


def insert_endpoint(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(webhook_endpoints.insert().values(values))
    app_config.changed(conn, values["app_id"])


def find_endpoint(conn: Connection, app_id: UUID, endpoint_id: UUID) -> dict[str, Any] | None:
    row = conn.execute(
        select(webhook_endpoints).where(webhook_endpoints.c.app_id == app_id, webhook_endpoints.c.id == endpoint_id)
    ).first()
    return dict(row._mapping) if row else None


def update_endpoint(conn: Connection, app_id: UUID, endpoint_id: UUID, values: dict[str, Any]) -> None:
    conn.execute(
        update(webhook_endpoints)
        .where(webhook_endpoints.c.app_id == app_id, webhook_endpoints.c.id == endpoint_id)
        .values(values)
    )
    app_config.changed(conn, app_id)


def delete_endpoint(conn: Connection, app_id: UUID, endpoint_id: UUID) -> None:
    conn.execute(delete(webhook_endpoints).where(webhook_endpoints.c.id == endpoint_id))
    app_config.changed(conn, app_id)


# Deliveries ---------------------------------------------------------------------


def _due(now: datetime) -> tuple[ColumnElement[bool], ...]:
    """Deliveries whose time has come and that no worker holds."""
    return (
        deliveries.c.status == "pending",
        deliveries.c.next_attempt_at <= now,
        or_(deliveries.c.claimed_until.is_(None), deliveries.c.claimed_until <= now),
    )


def any_due(conn: Connection, now: datetime) -> bool:
    return conn.execute(select(deliveries.c.id).where(*_due(now)).limit(1)).first() is not None


def claim_due(
    conn: Connection, now: datetime, until: datetime, limit: int, room: dict[UUID, int]
) -> list[dict[str, Any]]:
    """Claim up to ``limit`` deliveries that are due, each the oldest open one of its
    endpoint and profile (so a profile's events arrive in order), and at most
    ``room[endpoint]`` of each endpoint it names.

    On PostgreSQL ``FOR UPDATE SKIP LOCKED`` lets many workers claim at once
    without waiting for, or taking, each other's rows; on SQLite the write
    transaction serialises claims.
    """
    earlier = aliased(deliveries)
    # One index probe (endpoint, profile, status, sequence) for each delivery looked at. The
    # OFFSET keeps PostgreSQL from planning it as an anti-join, which, with the statistics of a
    # table that had just grown, scanned every pending delivery for each one: a second per
    # claim with a backlog of 3,000, growing with its square.
    blocked = (
        select(earlier.c.id)
        .where(
            earlier.c.endpoint_id == deliveries.c.endpoint_id,
            earlier.c.profile_id == deliveries.c.profile_id,
            earlier.c.status == "pending",
            earlier.c.event_sequence < deliveries.c.event_sequence,
        )
        .limit(1)
        .offset(0)
        .exists()
    )
    query = (
        select(deliveries.c.id, deliveries.c.endpoint_id)
        .where(
            *_due(now),
            deliveries.c.endpoint_id.not_in([endpoint for endpoint, left in room.items() if left <= 0]),
            ~blocked,
        )
        # The index's order, so the scan stops after ``limit`` deliveries instead of sorting
        # every due one; ``blocked`` keeps each profile's events in order.
        .order_by(deliveries.c.next_attempt_at)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True, of=deliveries)
    ids: list[UUID] = []
    taken: Counter[UUID] = Counter()
    for delivery_id, endpoint_id in conn.execute(query):
        if endpoint_id not in room or taken[endpoint_id] < room[endpoint_id]:
            taken[endpoint_id] += 1
            ids.append(delivery_id)
    if not ids:
        return []
    conn.execute(update(deliveries).where(deliveries.c.id.in_(ids)).values(claimed_until=until))
    rows = conn.execute(
        select(
            deliveries,
            events.c.payload,
            events.c.id.label("event_id"),
            *(column for column in webhook_endpoints.c if column.name not in ("id", "app_id", "created_at")),
        )
        .join(events, events.c.sequence == deliveries.c.event_sequence)
        .join(webhook_endpoints, webhook_endpoints.c.id == deliveries.c.endpoint_id)
        .where(deliveries.c.id.in_(ids))
        .order_by(deliveries.c.event_sequence)
    )
    return [dict(row._mapping) for row in rows]


def record_attempt(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(delivery_attempts.insert(), values)


def finish_delivery(conn: Connection, delivery_id: UUID, values: dict[str, Any]) -> None:
    conn.execute(update(deliveries).where(deliveries.c.id == delivery_id).values(claimed_until=None, **values))


def list_deliveries(
    conn: Connection, app_id: UUID, status: str | None, endpoint_id: UUID | None, limit: int
) -> list[dict[str, Any]]:
    query = (
        select(deliveries, events.c.event_type, events.c.id.label("event_id"))
        .join(events, events.c.sequence == deliveries.c.event_sequence)
        .where(events.c.app_id == app_id)
        .order_by(deliveries.c.event_sequence.desc())
        .limit(limit)
    )
    if status:
        query = query.where(deliveries.c.status == status)
    if endpoint_id:
        query = query.where(deliveries.c.endpoint_id == endpoint_id)
    return [dict(row._mapping) for row in conn.execute(query)]


def attempts_of(conn: Connection, delivery_ids: list[UUID]) -> list[dict[str, Any]]:
    query = (
        select(delivery_attempts)
        .where(delivery_attempts.c.delivery_id.in_(delivery_ids))
        .order_by(delivery_attempts.c.attempted_at)
    )
    return [dict(row._mapping) for row in conn.execute(query)]


def replay(conn: Connection, app_id: UUID, delivery_ids: list[UUID] | None, now: datetime) -> int:
    """Put dead and refused deliveries back in the queue (all of the app's, or the ones named)."""
    of_app = select(events.c.sequence).where(events.c.app_id == app_id)
    condition = and_(deliveries.c.status.in_(["dead", "refused"]), deliveries.c.event_sequence.in_(of_app))
    if delivery_ids is not None:
        condition = and_(condition, deliveries.c.id.in_(delivery_ids))
    result = conn.execute(
        update(deliveries)
        .where(condition)
        .values(status="pending", attempts=0, next_attempt_at=now, claimed_until=None, first_attempt_at=None)
    )
    return result.rowcount


def backlog(conn: Connection) -> dict[str, Any]:
    """How many deliveries are ``pending``, ``refused`` and ``dead``, and the earliest time one is
    due (``due_since``); through the (status, next_attempt_at) index, not the delivered ones."""
    kinds = ["pending", "refused", "dead"]
    counts: dict[str, int] = dict(
        conn.execute(
            select(deliveries.c.status, func.count())
            .where(deliveries.c.status.in_(kinds))
            .group_by(deliveries.c.status)
        ).all()
    )
    due_since = conn.scalar(select(func.min(deliveries.c.next_attempt_at)).where(deliveries.c.status == "pending"))
    return {**{kind: counts.get(kind, 0) for kind in kinds}, "due_since": due_since}


# Scheduled expiries ---------------------------------------------------------------


def schedule_expiry(conn: Connection, values: dict[str, Any]) -> None:
    """Set a chain's expiry; a changed due time re-arms it, the same one leaves it as it is."""
    upsert(
        conn,
        scheduled_expiries,
        {**values, "fired": False},
        keys=["profile_id", "store", "store_original_transaction_id"],
        update=["due_at", "fired"],
        unless_same=("due_at",),
    )


def unschedule_expiry(conn: Connection, profile_id: UUID, store: str, original_id: str) -> None:
    conn.execute(
        delete(scheduled_expiries).where(
            scheduled_expiries.c.profile_id == profile_id,
            scheduled_expiries.c.store == store,
            scheduled_expiries.c.store_original_transaction_id == original_id,
        )
    )


def _scheduled_due(table: Table, now: datetime) -> tuple[ColumnElement[bool], ...]:
    """A scheduled row (an expiry, a "still active" check) whose time has come and that has not fired."""
    return table.c.fired.is_(False), table.c.due_at <= now


def _any_due(conn: Connection, table: Table, now: datetime) -> bool:
    return conn.execute(select(table.c.due_at).where(*_scheduled_due(table, now)).limit(1)).first() is not None


def _due_rows(conn: Connection, table: Table, now: datetime, limit: int) -> list[dict[str, Any]]:
    """The earliest due rows; on PostgreSQL, those another worker holds are skipped."""
    query = select(table).where(*_scheduled_due(table, now)).order_by(table.c.due_at).limit(limit)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return [dict(row._mapping) for row in conn.execute(query)]


def any_expiry_due(conn: Connection, now: datetime) -> bool:
    return _any_due(conn, scheduled_expiries, now)


def due_expiries(conn: Connection, now: datetime, limit: int) -> list[dict[str, Any]]:
    return _due_rows(conn, scheduled_expiries, now, limit)


def mark_fired(conn: Connection, expiry: dict[str, Any]) -> None:
    conn.execute(
        update(scheduled_expiries)
        .where(
            scheduled_expiries.c.profile_id == expiry["profile_id"],
            scheduled_expiries.c.store == expiry["store"],
            scheduled_expiries.c.store_original_transaction_id == expiry["store_original_transaction_id"],
        )
        .values(fired=True)
    )


# Scheduled "still active" checks ----------------------------------------------------


CHECK_KEY = ["profile_id", "store", "store_original_transaction_id", "event_type"]


def schedule_check(conn: Connection, values: dict[str, Any]) -> None:
    """Arm a chain's check once: a chain has its trial_active, and its subscription_active, once."""
    insert_new(conn, scheduled_checks, {**values, "fired": False}, CHECK_KEY)


def any_check_due(conn: Connection, now: datetime) -> bool:
    return _any_due(conn, scheduled_checks, now)


def due_checks(conn: Connection, now: datetime, limit: int) -> list[dict[str, Any]]:
    return _due_rows(conn, scheduled_checks, now, limit)


def mark_check_fired(conn: Connection, check: dict[str, Any]) -> None:
    conn.execute(
        update(scheduled_checks).where(*(scheduled_checks.c[key] == check[key] for key in CHECK_KEY)).values(fired=True)
    )


# Raw store notifications forwarded ---------------------------------------------------


def insert_forward(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(store_forwards.insert().values(values))


def _forward_due(now: datetime) -> tuple[ColumnElement[bool], ...]:
    return (
        store_forwards.c.status == "pending",
        store_forwards.c.next_attempt_at <= now,
        or_(store_forwards.c.claimed_until.is_(None), store_forwards.c.claimed_until <= now),
    )


def any_forward_due(conn: Connection, now: datetime) -> bool:
    return conn.execute(select(store_forwards.c.id).where(*_forward_due(now)).limit(1)).first() is not None


def claim_due_forwards(conn: Connection, now: datetime, until: datetime, limit: int) -> list[dict[str, Any]]:
    """Claim up to ``limit`` due forwards, each with the settings and (sealed) secrets of its
    app's store, which name where it goes."""
    query = (
        select(store_forwards.c.id).where(*_forward_due(now)).order_by(store_forwards.c.next_attempt_at).limit(limit)
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    ids = list(conn.execute(query).scalars())
    if not ids:
        return []
    conn.execute(update(store_forwards).where(store_forwards.c.id.in_(ids)).values(claimed_until=until))
    rows = conn.execute(
        select(store_forwards, store_configs.c.settings, store_configs.c.secrets)
        .join(
            store_configs,
            and_(store_configs.c.app_id == store_forwards.c.app_id, store_configs.c.store == store_forwards.c.store),
            isouter=True,
        )
        .where(store_forwards.c.id.in_(ids))
        .order_by(store_forwards.c.created_at)
    )
    return [dict(row._mapping) for row in rows]


def finish_forward(conn: Connection, forward_id: UUID, values: dict[str, Any]) -> None:
    conn.execute(update(store_forwards).where(store_forwards.c.id == forward_id).values(claimed_until=None, **values))


def list_forwards(conn: Connection, app_id: UUID, status: str | None, limit: int) -> list[dict[str, Any]]:
    query = (
        select(store_forwards)
        .where(store_forwards.c.app_id == app_id)
        .order_by(store_forwards.c.created_at.desc())
        .limit(limit)
    )
    if status:
        query = query.where(store_forwards.c.status == status)
    return [dict(row._mapping) for row in conn.execute(query)]


def replay_forwards(conn: Connection, app_id: UUID, now: datetime) -> int:
    """Put the app's dead and refused forwards back in the queue."""
    result = conn.execute(
        update(store_forwards)
        .where(store_forwards.c.app_id == app_id, store_forwards.c.status.in_(["dead", "refused"]))
        .values(status="pending", attempts=0, next_attempt_at=now, claimed_until=None, first_attempt_at=None)
    )
    return result.rowcount


def delete_delivered_forwards(conn: Connection, app_id: UUID | None, before: datetime) -> int:
    condition = and_(store_forwards.c.status == "delivered", store_forwards.c.created_at < before)
    if app_id is not None:
        condition = and_(condition, store_forwards.c.app_id == app_id)
    return conn.execute(delete(store_forwards).where(condition)).rowcount
