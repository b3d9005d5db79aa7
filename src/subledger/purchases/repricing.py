"""New exchange rates: the ledger's USD figures repriced at them while writes go on.

New rates start a generation of them at once, in a short transaction: every write from
then on computes at them. Each profile records the generation its USD figures (its total
revenue, its share of the metric rollups) were computed at; ``finish_repricing`` then
brings the profiles of the generation before to the new one, a page at a time, while
writes go on. A write that reaches such a profile first takes its share out of the
rollups at the rates it was added at and adds it back at the new ones. The metrics
answer 503 until the last page.
"""

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from subledger.catalog import service as catalog_service
from subledger.catalog.rules import Pricing, Rates
from subledger.core import app_config
from subledger.core.runtime import Runtime
from subledger.metrics import upkeep as metrics_upkeep
from subledger.purchases import repository, rules


def load_rates(rt: Runtime, text: str, progress: Callable[[int], None] = lambda done: None) -> int:
    """Load exchange rates (``currency,usd_per_unit,as_of`` CSV rows) over the shipped table and
    reprice the ledger at them; ValueError on a bad line, nothing loaded. ``progress`` hears how
    many profiles have been repriced."""
    finish_repricing(rt, progress)  # one an earlier load left unfinished
    with rt.db.write() as conn:
        _record_pricing(conn)
        count = catalog_service.load_rates(conn, text)
        _start_repricing(conn)
    finish_repricing(rt, progress)
    return count


def reprice(rt: Runtime, progress: Callable[[int], None] = lambda done: None) -> int:
    """Bring the ledger to the exchange rates in force, if it is not there (a release shipped new
    ones, or a load of them stopped half-way): how many profiles' total revenue moved."""
    moved = finish_repricing(rt, progress)
    with rt.db.write() as conn:
        moved += _record_pricing(conn)
        started = _start_repricing(conn)
    return moved + finish_repricing(rt, progress) if started else moved


def _start_repricing(conn: Connection) -> bool:
    """Start a generation of rates if those in force are not the ledger's (the caller's
    transaction, with no repricing under way and the pricing recorded): whether it did."""
    if catalog_service.recorded_pricing(conn)["rates_digest"] == catalog_service.rates_in_force(conn).digest():
        return False
    app_config.changed(conn)
    repository.hold_off_writes(conn)  # writers under way finish first, at the rates they read
    priced, rates = catalog_service.recorded_pricing(conn), catalog_service.rates_in_force(conn)
    if priced["rates_digest"] == rates.digest():
        return False  # another process started it meanwhile
    if priced["previous_rates"] is not None:
        # Another process started one since this one finished the last: the rates of the
        # generation before would be lost.
        raise ValueError("new exchange rates are being applied by another process; run this again once it is done")
    catalog_service.price_ledger_at(conn, rates, priced["generation"] + 1, Rates.of(priced["rates"]))
    return True


# Profiles recomputed per write transaction (those with a price in a currency whose rate
# moved; a millisecond or two each): on SQLite, writes wait for one page at a time.
REPRICING_PAGE = 5
# Profiles looked at per write transaction: those with nothing to recompute only have their
# generation set, one statement for all of them, so the walk goes at the pace of the work.
REPRICING_WALK = 100


def finish_repricing(rt: Runtime, progress: Callable[[int], None] = lambda done: None) -> int:
    """Reprice the profiles still at the generation of rates before the one in force, a page of
    them per write transaction so that writes go on in between, then end the repricing: how
    many profiles' total revenue moved. Safe to stop at any point and run again."""
    moved = done = 0
    after = None
    while True:
        now = rt.clock.now()
        with rt.db.write() as conn:
            started = time.monotonic()  # once the write lock is this page's (on SQLite)
            priced = catalog_service.ledger_pricing(conn)
            pricing = Pricing.of(priced)
            if priced is None or pricing.previous is None:
                return moved
            stale = repository.profiles_priced_before(conn, pricing.generation, after, REPRICING_WALK)
            if stale:
                moving = (pricing.previous, Rates.of(priced["rates"]))
                stale, page_moved = _reprice_page(conn, stale, pricing.generation, moving, now)
                moved += page_moved
        if stale:
            after = stale[-1]["id"]
            done += len(stale)
            progress(done)
            # As long again for the writes: on SQLite a writer would otherwise rarely win the write
            # lock between two pages, and on PostgreSQL the pages' rollup rows hold up writers too.
            time.sleep(time.monotonic() - started)
            continue
        # The walk reached the end. No write moves a profile to an older generation, so none is
        # left behind it; a read makes sure, as a write would hold SQLite's write lock for a scan
        # of every profile, and the walk starts again if one is.
        with rt.db.read() as conn:
            left_behind = repository.any_priced_before(conn, pricing.generation)
        if left_behind:
            after = None
            continue
        with rt.db.write() as conn:
            # Meanwhile another process may have ended this repricing, and even started the next.
            priced = catalog_service.recorded_pricing(conn)
            if priced["generation"] == pricing.generation and priced["previous_rates"] is not None:
                catalog_service.price_ledger_at(conn, Rates.of(priced["rates"]), pricing.generation, None)
        return moved


def repricing(rt: Runtime) -> bool:
    """Whether profiles priced at the generation of rates before the one in force remain."""
    with rt.db.read() as conn:
        return catalog_service.repricing(conn)


def _reprice_page(
    conn: Connection, stale: list[dict[str, Any]], generation: int, moving: tuple[Rates, Rates], now: datetime
) -> tuple[list[dict[str, Any]], int]:
    """Move these locked profiles (in id order) from the rates of the generation before to those
    of ``generation`` (``moving``: from, to), as far as the ``REPRICING_PAGE``-th of them that has
    a price in a currency whose rate moved: the profiles moved, and how many of them had their
    total revenue move. The others have nothing to recompute."""
    affected = repository.paying_in(conn, [profile["id"] for profile in stale], moving[0].moved(moving[1]))
    recomputed = [profile for profile in stale if profile["id"] in affected][:REPRICING_PAGE]
    if len(recomputed) == REPRICING_PAGE:
        stale = stale[: stale.index(recomputed[-1]) + 1]
    moved = _reprice_profiles(conn, recomputed, generation, moving, now)
    untouched = [profile["id"] for profile in stale if profile["id"] not in affected]
    repository.set_rates_generation(conn, untouched, generation)
    return stale, moved


def _reprice_profiles(
    conn: Connection, locked: list[dict[str, Any]], generation: int, moving: tuple[Rates, Rates], now: datetime
) -> int:
    """Move these locked profiles' USD figures from the rates of the generation before to those
    of ``generation``, each app's share of the rollups in one go: how many totals moved."""
    rates = moving[1]
    if not locked:
        return 0
    ledgers = {profile["id"]: repository.profile_transactions(conn, profile["id"]) for profile in locked}
    for app_id in dict.fromkeys(profile["app_id"] for profile in locked):
        of_app = {profile["id"]: ledgers[profile["id"]] for profile in locked if profile["app_id"] == app_id}
        metrics_upkeep.reprice(conn, app_id, of_app, moving, now)
    totals = {profile_id: rules.revenue_usd(ledger, rates) for profile_id, ledger in ledgers.items()}
    repository.set_repriced(conn, totals, generation)
    return sum(totals[profile["id"]] != profile["total_revenue_usd"] for profile in locked)


def _record_pricing(conn: Connection) -> int:
    """Make sure the ledger's pricing records the rates themselves, in the caller's transaction:
    a database from before kept none, or only their digest. Its profiles are then brought to the
    rates in force, writes held off: how many totals moved."""
    priced = catalog_service.ledger_pricing(conn)
    if priced is not None and priced["rates"] is not None:
        return 0
    app_config.changed(conn)  # every process reads the rates in force afresh
    repository.hold_off_writes(conn)
    rates = catalog_service.rates_in_force(conn)
    moved = 0
    if priced is None or priced["rates_digest"] != rates.digest():
        moved = _reprice_totals(conn, rates)
        if priced is not None:
            # The rollups are at the rates of the digest too. With no record at all they are
            # current: every load of rates rebuilt them.
            metrics_upkeep.mark_all_for_rebuild(conn)
    catalog_service.price_ledger_at(conn, rates, 0 if priced is None else priced["generation"], None)
    return moved


def _reprice_totals(conn: Connection, rates: Rates, page: int = 1000) -> int:
    """Recompute every profile's total revenue at ``rates``: how many moved. The caller holds
    off writes: one that had read the old rates would otherwise store a total at them after this."""
    moved, after = 0, None
    while ids := [profile_id for _, profile_id in repository.profile_ids(conn, None, after, page)]:
        stored, ledgers = repository.revenues(conn, ids)
        totals = {profile_id: rules.revenue_usd(ledgers[profile_id], rates) for profile_id in stored}
        changed = {profile_id: total for profile_id, total in totals.items() if total != stored[profile_id]}
        repository.set_revenues(conn, changed)
        moved += len(changed)
        after = ids[-1]
    return moved
