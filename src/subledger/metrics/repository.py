"""SQL for analytics: the metric rollups, profile counts, export pages."""

from collections import defaultdict
from collections.abc import Iterator
from datetime import date, datetime
from itertools import pairwise
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, Select, Table, delete, func, insert, or_, select

from subledger.core.sql import add_up
from subledger.core.tables import (
    DAY_MEASURES,
    apps,
    events,
    metric_cohorts,
    metric_coverage,
    metric_days,
    metric_payers,
    metric_rebuilds,
    profiles,
    transactions,
)
from subledger.metrics.rollup import ANY

KEY = ("store", "product", "country", "environment")
ROLLUPS = (  # table, its key columns after app_id (but the shard), its measures
    (metric_days, ("day", *KEY), DAY_MEASURES),
    (metric_payers, ("period", *KEY, "bucket"), ("profiles",)),
    (metric_cohorts, ("cohort", "month_offset", *KEY), ("covered", "onward")),
)


def add_to_rollups(conn: Connection, app_id: UUID, shard: int, rows: tuple[list[dict[str, Any]], ...]) -> None:
    """Add rows of (days, payers, cohorts) to a shard of the app's rollups, each table in key order."""
    for (table, keys, measures), table_rows in zip(ROLLUPS, rows, strict=True):
        if table_rows:
            values = [{"app_id": app_id, "shard": shard, **row} for row in table_rows]
            add_up(conn, table, values, ["app_id", *keys, "shard"], list(measures))


def replace_coverage(conn: Connection, app_id: UUID, rows: dict[UUID, list[dict[str, Any]]]) -> None:
    """Put these coverage rows of profiles ({profile_id: its rows}) in place of those they had."""
    if rows:
        conn.execute(delete(metric_coverage).where(metric_coverage.c.profile_id.in_(list(rows))))
        add_coverage(conn, app_id, rows)


def add_coverage(conn: Connection, app_id: UUID, rows: dict[UUID, list[dict[str, Any]]]) -> None:
    """Insert coverage rows of profiles: {profile_id: its rows}."""
    values = [{"app_id": app_id, "profile_id": owner, **row} for owner, found in rows.items() for row in found]
    if values:
        conn.execute(insert(metric_coverage), values)


def clear_rollups(conn: Connection, app_id: UUID) -> None:
    for table in (metric_days, metric_payers, metric_cohorts, metric_coverage):
        conn.execute(delete(table).where(table.c.app_id == app_id))


def rollup_rows(conn: Connection, app_id: UUID) -> tuple[set[tuple[tuple[str, Any], ...]], ...]:
    """(days, payers, cohorts) rows, their shards summed, that add something, as sets of sorted
    (column, value) pairs."""
    found = []
    for table, keys, measures in ROLLUPS:
        key_columns = [table.c[name] for name in keys]
        sums = [func.sum(table.c[name]).label(name) for name in measures]
        query = select(*key_columns, *sums).where(table.c.app_id == app_id).group_by(*key_columns)
        rows = [{**row, **{name: int(row[name]) for name in measures}} for row in conn.execute(query).mappings()]
        found.append({tuple(sorted(row.items())) for row in rows if any(row[name] for name in measures)})
    return tuple(found)


def coverage_rows(conn: Connection, app_id: UUID, after: datetime) -> list[dict[str, Any]]:
    """The app's coverage that ends after ``after`` or never."""
    table = metric_coverage
    ends = table.c.ends_at
    query = select(table).where(table.c.app_id == app_id, or_(ends.is_(None), ends > after))
    return [dict(row) for row in conn.execute(query).mappings()]


def lock_rollups(conn: Connection) -> None:
    """On PostgreSQL, hold off every write to the rollups until this transaction ends
    (on SQLite the write transaction already holds the one database lock)."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("LOCK TABLE metric_days, metric_payers, metric_cohorts, metric_coverage IN EXCLUSIVE MODE")


def ledgers(conn: Connection, app_id: UUID, page: int = 500) -> Iterator[tuple[UUID, list[dict[str, Any]]]]:
    """Each of the app's profiles that has transactions, with them."""
    ids_page = select(profiles.c.id).where(profiles.c.app_id == app_id).order_by(profiles.c.id).limit(page)
    after = None
    while ids := list(conn.execute(ids_page if after is None else ids_page.where(profiles.c.id > after)).scalars()):
        by_profile = defaultdict(list)
        for row in conn.execute(select(transactions).where(transactions.c.profile_id.in_(ids))).mappings():
            by_profile[row["profile_id"]].append(dict(row))
        yield from by_profile.items()
        after = ids[-1]


def ledger(conn: Connection, profile_id: UUID) -> list[dict[str, Any]]:
    """One profile's transactions."""
    query = select(transactions).where(transactions.c.profile_id == profile_id)
    return [dict(row) for row in conn.execute(query).mappings()]


def pending_rebuilds(conn: Connection) -> list[UUID]:
    return list(conn.execute(select(metric_rebuilds.c.app_id)).scalars())


def mark_all_for_rebuild(conn: Connection) -> None:
    conn.execute(
        insert(metric_rebuilds).from_select(
            ["app_id"], select(apps.c.id).where(apps.c.id.not_in(select(metric_rebuilds.c.app_id)))
        )
    )


def rebuilt(conn: Connection, app_id: UUID) -> None:
    conn.execute(delete(metric_rebuilds).where(metric_rebuilds.c.app_id == app_id))


def _filtered(query: Select[Any], table: Table, filters: dict[str, str | None]) -> Select[Any]:
    for name, value in filters.items():
        if value is not None:
            query = query.where(table.c[name] == value)
    return query


def day_sums(
    conn: Connection, app_id: UUID, start: date, end: date, filters: dict[str, str | None]
) -> tuple[dict[str, int], dict[date, dict[str, int]]]:
    """Each day measure summed over the filters: over the days before ``start``, and by day up to ``end``
    (as ints: PostgreSQL sums bigints into numerics)."""
    sums = [func.coalesce(func.sum(metric_days.c[name]), 0) for name in DAY_MEASURES]
    mine = metric_days.c.app_id == app_id
    before = conn.execute(_filtered(select(*sums).where(mine, metric_days.c.day < start), metric_days, filters)).one()
    query = _filtered(
        select(metric_days.c.day, *sums).where(mine, metric_days.c.day >= start, metric_days.c.day < end),
        metric_days,
        filters,
    ).group_by(metric_days.c.day)
    by_day = {row[0]: dict(zip(DAY_MEASURES, map(int, row[1:]), strict=True)) for row in conn.execute(query)}
    return dict(zip(DAY_MEASURES, map(int, before), strict=True)), by_day


def payers(
    conn: Connection, app_id: UUID, period: str, start: date, end: date, filters: dict[str, str | None]
) -> dict[date, int]:
    """Profiles with a paid purchase, by bucket start (a filter left out matches any value)."""
    table = metric_payers
    query = (
        select(table.c.bucket, func.sum(table.c.profiles))
        .where(
            table.c.app_id == app_id,
            table.c.period == period,
            *[table.c[name] == (ANY if value is None else value) for name, value in filters.items()],
            table.c.bucket >= start,
            table.c.bucket < end,
        )
        .group_by(table.c.bucket)
    )
    return {bucket: int(count) for bucket, count in conn.execute(query)}


def cohort_sums(
    conn: Connection, app_id: UUID, first: date, last: date, filters: dict[str, str | None]
) -> dict[tuple[date, int], tuple[int, int]]:
    table = metric_cohorts
    query = _filtered(
        select(table.c.cohort, table.c.month_offset, func.sum(table.c.covered), func.sum(table.c.onward)).where(
            table.c.app_id == app_id, table.c.cohort >= first, table.c.cohort <= last
        ),
        table,
        filters,
    ).group_by(table.c.cohort, table.c.month_offset)
    return {(row[0], row[1]): (int(row[2]), int(row[3])) for row in conn.execute(query)}


def coverage_moves(
    conn: Connection, app_id: UUID, start: datetime, end: datetime, filters: dict[str, str | None]
) -> dict[str, int]:
    """How coverage moved from ``start`` to ``end``: paid and trial subscriptions (and MRR) that
    began minus those that ended in [start, end), and paid coverage that ended for good in [start, end]."""
    table = metric_coverage
    mine = table.c.app_id == app_id
    moves = {"paid": 0, "mrr": 0, "trial": 0, "churned": 0}
    for column, sign in ((table.c.starts_at, 1), (table.c.ends_at, -1)):
        query = select(table.c.kind, func.count(), func.coalesce(func.sum(table.c.mrr), 0)).where(
            mine, table.c.kind != "churn", column >= start, column < end
        )
        for kind, count, mrr in conn.execute(_filtered(query, table, filters).group_by(table.c.kind)):
            moves[kind] += sign * count
            moves["mrr"] += sign * int(mrr)
    churns = select(func.count()).where(mine, table.c.kind == "churn", table.c.ends_at >= start, table.c.ends_at <= end)
    moves["churned"] = conn.execute(_filtered(churns, table, filters)).scalar_one()
    return moves


def profiles_before(conn: Connection, app_id: UUID, moment: datetime) -> int:
    query = (
        select(func.count()).select_from(profiles).where(profiles.c.app_id == app_id, profiles.c.created_at < moment)
    )
    return conn.execute(query).scalar_one()


def profiles_created(conn: Connection, app_id: UUID, moments: list[datetime]) -> list[int]:
    """How many of the app's profiles were created between each two consecutive ``moments``."""
    created = profiles.c.created_at
    mine = profiles.c.app_id == app_id
    return [
        conn.execute(select(func.count()).where(mine, created >= start, created < end)).scalar_one()
        if start < end
        else 0
        for start, end in pairwise(moments)
    ]


def profiles_page(conn: Connection, app_id: UUID, after: UUID | None, limit: int) -> list[dict[str, Any]]:
    query = select(profiles).where(profiles.c.app_id == app_id).order_by(profiles.c.id).limit(limit)
    if after is not None:
        query = query.where(profiles.c.id > after)
    return [dict(row._mapping) for row in conn.execute(query)]


def transactions_page(
    conn: Connection, app_id: UUID, after: UUID | None, limit: int
) -> tuple[list[dict[str, Any]], UUID | None]:
    """The transactions of the app's next ``limit`` profiles after ``after`` (in id order), by
    profile then id, each with its profile's customer_user_id; and where the next page starts
    (None at the end). Walked by profile: each page is two index ranges, where ordering the app's
    whole ledger by transaction id would sort all of it for every page."""
    page = select(profiles.c.id, profiles.c.customer_user_id).where(profiles.c.app_id == app_id)
    if after is not None:
        page = page.where(profiles.c.id > after)
    owners: dict[UUID, str | None] = {
        row.id: row.customer_user_id for row in conn.execute(page.order_by(profiles.c.id).limit(limit))
    }
    if not owners:
        return [], None
    query = (
        select(transactions)
        .where(transactions.c.profile_id.in_(list(owners)))
        .order_by(transactions.c.profile_id, transactions.c.id)
    )
    rows = [{**row, "customer_user_id": owners[row["profile_id"]]} for row in conn.execute(query).mappings()]
    return rows, (list(owners)[-1] if len(owners) == limit else None)


def count(conn: Connection, table_name: str, app_id: UUID) -> int:
    table = {"profiles": profiles, "transactions": transactions, "events": events}[table_name]
    return conn.execute(select(func.count()).select_from(table).where(table.c.app_id == app_id)).scalar_one()
