"""Keeping the metric rollups in step with the ledger.

Every write to a profile's ledger calls ``record`` in its own database
transaction, so the rollups change with the ledger or not at all; new exchange
rates move each profile's share the same way (purchases.repricing.finish_repricing).
``rebuild`` recomputes an app's rollups from its whole ledger: after the upgrade
that introduced them, and for ``subledger verify --fix``.
"""

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from functools import partial
from typing import Any
from uuid import UUID

from sqlalchemy import Connection

from subledger.catalog import service as catalog_service
from subledger.catalog.rules import Catalog, Rates
from subledger.core.runtime import Runtime
from subledger.core.tables import ROLLUP_SHARDS
from subledger.metrics import repository, rollup, rules


def record(
    conn: Connection,
    app_id: UUID,
    profile_id: UUID,
    ledgers: tuple[list[dict[str, Any]], list[dict[str, Any]]],
    catalogs: tuple[Catalog, Catalog],
    rates: tuple[Rates, Rates],
    now: datetime,
) -> None:
    """Apply a change of one profile's ledger (before, after) under the catalog and exchange
    rates (before, after)."""
    change = rollup.Totals()
    coverage = _add_change(change, ledgers, catalogs, rates, now)
    _write(conn, app_id, profile_id.int % ROLLUP_SHARDS, change, {} if coverage is None else {profile_id: coverage})


def reprice(
    conn: Connection, app_id: UUID, ledgers: dict[UUID, list[dict[str, Any]]], rates: tuple[Rates, Rates], now: datetime
) -> None:
    """Move these profiles of the app ({profile: its ledger}) from the exchange rates before to
    those after: their changes add up and go into the rollups together, in the shard of the
    first of them."""
    catalog = catalog_service.catalog(conn, app_id)
    change, coverage = rollup.Totals(), {}
    for profile_id, ledger in ledgers.items():
        moved = _add_change(change, (ledger, ledger), (catalog, catalog), rates, now)
        if moved is not None:
            coverage[profile_id] = moved
    _write(conn, app_id, next(iter(ledgers)).int % ROLLUP_SHARDS, change, coverage)


def _add_change(
    change: rollup.Totals,
    ledgers: tuple[list[dict[str, Any]], list[dict[str, Any]]],
    catalogs: tuple[Catalog, Catalog],
    rates: tuple[Rates, Rates],
    now: datetime,
) -> list[dict[str, Any]] | None:
    """Add a change of one profile's ledger to ``change``: the profile's coverage rows after it,
    or None when they are the same as before."""
    open_after = now - timedelta(days=1)
    after_txs = rules.ledger_rows(ledgers[1], catalogs[1], rates[1])
    if catalogs[0] is catalogs[1] and rates[0] is rates[1]:
        # The rows a change left alone are the same objects in both ledgers, and read the same.
        unchanged = {id(row): tx for row, tx in zip(ledgers[1], after_txs, strict=True)}
        before_txs = [unchanged.get(id(row)) or rules.ledger_row(row, catalogs[0], rates[0]) for row in ledgers[0]]
    else:
        before_txs = rules.ledger_rows(ledgers[0], catalogs[0], rates[0])
    before, after = rollup.tally(before_txs, open_after), rollup.tally(after_txs, open_after)
    change.add_change(before, after)
    return None if before.coverage == after.coverage else after.coverage


def _write(
    conn: Connection, app_id: UUID, shard: int, change: rollup.Totals, coverage: dict[UUID, list[dict[str, Any]]]
) -> None:
    repository.add_to_rollups(conn, app_id, shard, change.rows())
    repository.replace_coverage(conn, app_id, coverage)


def forget(conn: Connection, profile: dict[str, Any], now: datetime) -> None:
    """Take a profile that is being deleted out of the rollups."""
    app_id = profile["app_id"]
    ledger = repository.ledger(conn, profile["id"])
    if ledger:
        catalog = catalog_service.catalog(conn, app_id)
        rates = catalog_service.rates(conn, app_id)
        added_at = catalog_service.pricing(conn, app_id).rates_of(profile, rates)
        record(conn, app_id, profile["id"], (ledger, []), (catalog, catalog), (added_at, rates), now)


def _tallies(conn: Connection, app_id: UUID, open_after: datetime) -> Iterator[tuple[UUID, rollup.Tally]]:
    """Each of the app's profiles with the tally of its ledger."""
    catalog, rates = catalog_service.catalog(conn, app_id), catalog_service.rates(conn, app_id)
    for profile_id, ledger in repository.ledgers(conn, app_id):
        yield profile_id, rollup.tally(rules.ledger_rows(ledger, catalog, rates), open_after)


def rebuild(rt: Runtime, app_id: UUID, progress: Callable[[int], None] = lambda done: None) -> None:
    """Recompute the app's rollups from its ledger in one transaction, writes to them held off
    meanwhile; ``progress`` hears how many profiles are done."""
    open_after = rt.clock.now() - timedelta(days=1)
    with rt.db.write() as conn:
        if catalog_service.repricing(conn):
            # It computes every profile at the rates in force: a repricing would then move some twice.
            raise RuntimeError("new exchange rates are being applied; rebuild once that is done")
        repository.lock_rollups(conn)
        repository.clear_rollups(conn, app_id)
        totals, coverage = rollup.Totals(), {}
        done = 0
        for profile_id, tally in _tallies(conn, app_id, open_after):
            totals.absorb(tally)
            coverage[profile_id] = tally.coverage
            done += 1
            if done % 1000 == 0:
                repository.add_coverage(conn, app_id, coverage)
                coverage = {}
                progress(done)
        repository.add_coverage(conn, app_id, coverage)
        repository.add_to_rollups(conn, app_id, 0, totals.rows())
        repository.rebuilt(conn, app_id)
    progress(done)


def matches_ledger(rt: Runtime, app_id: UUID) -> bool:
    """Whether the app's rollups are what its ledger adds up to (for ``subledger verify``)."""
    open_after = rt.clock.now() - timedelta(days=1)
    with rt.db.read() as conn:
        totals, coverage = rollup.Totals(), set[tuple[Any, ...]]()
        for profile_id, tally in _tallies(conn, app_id, open_after):
            totals.absorb(tally)
            coverage.update(_coverage_entry({"profile_id": profile_id, **row}) for row in tally.coverage)
        computed = tuple({tuple(sorted(row.items())) for row in rows} for rows in totals.rows())
        if repository.rollup_rows(conn, app_id) != computed:
            return False
        return {_coverage_entry(row) for row in repository.coverage_rows(conn, app_id, open_after)} == coverage


def _coverage_entry(row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(row[name] for name in ("profile_id", "kind", "starts_at", "ends_at", "mrr", *repository.KEY))


def rebuild_pending(rt: Runtime, progress: Callable[[UUID, int], None] = lambda app_id, done: None) -> int:
    """Rebuild every app marked for it; returns how many."""
    with rt.db.read() as conn:
        pending = repository.pending_rebuilds(conn)
    for app_id in pending:
        rebuild(rt, app_id, partial(progress, app_id))
    return len(pending)


def mark_all_for_rebuild(conn: Connection) -> None:
    """Mark every app's rollups for a rebuild (``rebuild_pending``), in the caller's transaction;
    metrics answer 503 until it has run."""
    repository.mark_all_for_rebuild(conn)
