"""Purchase use cases: set transaction, grant, revoke, catalog changes.

Every change appends to (or updates) the ledger and recomputes the profile's
derived state in the same database transaction, with the profile row locked.
"""

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from subledger.catalog import service as catalog_service
from subledger.catalog.rules import MAX_TRANSACTION_USD, Catalog, Rates
from subledger.catalog.schemas import ProductIn, product_out
from subledger.core.dates import format_datetime, parse_datetime
from subledger.core.errors import NON_FIELD, ApiError, bad_request
from subledger.core.profile_ref import ProfileRef
from subledger.core.runtime import Runtime
from subledger.currencies import service as currencies_service
from subledger.events import rules as events_rules
from subledger.events import service as events_service
from subledger.events.rules import Change
from subledger.metrics import upkeep as metrics_upkeep
from subledger.profiles import service as profiles_service
from subledger.purchases import repository, rules
from subledger.purchases.schemas import GrantIn, RevokeIn, TransactionIn


def derive(
    conn: Connection,
    app_id: UUID,
    profile_id: UUID,
    ledger: list[dict[str, Any]] | None = None,
    rates: Rates | None = None,
    catalog: Catalog | None = None,
) -> rules.Derived:
    """The profile's derived state as its ledger stands (ledger, rates and catalog are read unless given)."""
    return rules.derive(
        profile_id,
        repository.profile_transactions(conn, profile_id) if ledger is None else ledger,
        repository.profile_grants(conn, profile_id),
        catalog_service.catalog(conn, app_id) if catalog is None else catalog,
        catalog_service.rates(conn, app_id) if rates is None else rates,
    )


def _key(tx: dict[str, Any]) -> tuple[str, str]:
    return tx["store"], tx["store_transaction_id"]


def _ledger_before(
    ledger: list[dict[str, Any]], written: Sequence[tuple[dict[str, Any] | None, tuple[str, str]]]
) -> list[dict[str, Any]]:
    """The ledger as it was before the ``written`` transactions were recorded."""
    first_seen: dict[tuple[str, str], dict[str, Any] | None] = {}
    for before, key in written:
        first_seen.setdefault(key, before)
    kept = [tx for tx in ledger if _key(tx) not in first_seen]
    return kept + [before for before in first_seen.values() if before is not None]


def recompute(
    rt: Runtime,
    conn: Connection,
    profile: dict[str, Any],
    now: datetime,
    written: Sequence[tuple[dict[str, Any] | None, tuple[str, str]]] = (),
    rates: Rates | None = None,
    old_catalog: Catalog | None = None,
    ledger: list[dict[str, Any]] | None = None,
    credits: bool = True,
) -> int:
    """Store the profile's derived state afresh, update the metric rollups, emit the events
    of the change and credit the virtual currencies new purchases grant (not with ``credits``
    false: an imported history, whose balances were spent elsewhere).

    ``written`` lists the transactions the change wrote: (the row before, its
    store and store_transaction_id); ``old_catalog`` is the catalog before a change
    of it; ``ledger`` is the profile's transactions as the change left them (read
    when not given). Returns the response timestamp.
    """
    if ledger is None:
        ledger = repository.profile_transactions(conn, profile["id"])
    rates = catalog_service.rates(conn, profile["app_id"]) if rates is None else rates
    pricing = catalog_service.pricing(conn, profile["app_id"])
    catalog = catalog_service.catalog(conn, profile["app_id"])
    derived = derive(conn, profile["app_id"], profile["id"], ledger, rates, catalog)
    old_levels = (profile["derived"] or {}).get("access_levels", [])
    timestamp = rt.timestamps.issue(profile["last_timestamp_ms"] + 1)
    values = {
        "derived": derived.stored(),
        "total_revenue_usd": derived.total_revenue_usd,
        "last_timestamp_ms": timestamp,
        "updated_at": now,
    }
    old_rates = pricing.rates_of(profile, rates)  # a repricing may not have reached the profile yet
    if profile["rates_generation"] != pricing.generation:
        values["rates_generation"] = pricing.generation
    profiles_service.save(conn, profile, values)

    changes = []
    for before, key in written:
        after = _in_ledger(ledger, *key)
        assert after is not None  # just written
        chain = [tx for tx in events_service.chain_of(after, ledger) if tx is not after]
        changes += events_rules.transaction_changes(before, after, chain)
    changes += events_rules.access_level_changes(old_levels, derived.access_levels, now)
    events_service.emit(conn, rt, profile, changes, ledger, now, rates)
    events_service.schedule_expiries(conn, profile, ledger, [key for _before, key in written])
    if credits:
        recorded = [(before, _in_ledger(ledger, *key)) for before, key in written]
        currencies_service.settle(conn, profile, catalog, [(b, tx) for b, tx in recorded if tx is not None], now)
    if written or old_catalog is not None or old_rates is not rates:
        # Last: other writers may wait for the rollup rows this locks until the commit.
        ledgers = (_ledger_before(ledger, written), ledger)
        catalogs = (old_catalog or catalog, catalog)
        metrics_upkeep.record(conn, profile["app_id"], profile["id"], ledgers, catalogs, (old_rates, rates), now)
    return timestamp


def _transaction_taken() -> ApiError:
    return bad_request(
        "store_transaction_id_error",
        "store_transaction_id",
        "This store_transaction_id belongs to another profile of the app.",
    )


def _in_ledger(ledger: list[dict[str, Any]], store: str, store_transaction_id: str) -> dict[str, Any] | None:
    return next((tx for tx in ledger if _key(tx) == (store, store_transaction_id)), None)


def _update(conn: Connection, ledger: list[dict[str, Any]], row: dict[str, Any], values: dict[str, Any]) -> None:
    """Update a transaction of the ledger, in the database and in ``ledger``."""
    updated = repository.update_transaction(conn, row["id"], values)
    ledger[:] = [updated if tx is row else tx for tx in ledger]


def _record(
    conn: Connection,
    app_id: UUID,
    profile: dict[str, Any],
    ledger: list[dict[str, Any]],
    tx: TransactionIn,
    now: datetime,
    rates: Rates,
    update: bool = True,
) -> dict[str, Any] | None:
    """Write a transaction to the profile's ``ledger`` (in the database, and in the list
    as the database now holds it); returns the row as it was before (None if new).

    A transaction already recorded for this profile is updated with what was
    sent (unless ``update`` is false); one of another profile is refused.
    """
    if not rates.knows(tx.price.currency):
        raise bad_request(
            "invalid_enumeration_member",
            "price.currency",
            f"No exchange rate for {tx.price.currency}; load one with `subledger rates load`.",
        )
    if rates.to_usd(tx.price.value, tx.price.currency) > MAX_TRANSACTION_USD:
        raise bad_request(
            "base_error", "price.value", f"A transaction may be worth at most {MAX_TRANSACTION_USD:,} USD."
        )
    values = rules.transaction_values(tx)
    existing = _in_ledger(ledger, tx.store, tx.store_transaction_id)
    if existing is None:
        row = repository.insert_transaction(
            conn,
            {
                **values,
                "id": uuid4(),
                "app_id": app_id,
                "profile_id": profile["id"],
                "created_at": now,
                "updated_at": now,
            },
        )
        if row is None:  # the app has it already, and not in this profile's ledger
            raise _transaction_taken()
        ledger.append(row)
    elif update and any(existing[key] != value for key, value in values.items()):
        _update(conn, ledger, existing, {**values, "updated_at": now})
    return existing


def check(tx: TransactionIn) -> None:
    """The set-transaction consistency rules: the contract's 400 for the first problem."""
    rules.check_transaction(tx)


def set_transaction(rt: Runtime, app_id: UUID, ref: ProfileRef, tx: TransactionIn) -> dict[str, Any]:
    """Record a store transaction; re-sending one updates it and duplicates nothing."""
    rules.check_transaction(tx)
    now = rt.clock.now()
    with rt.db.write() as conn:
        profile = profiles_service.lock(conn, app_id, ref)
        ledger = repository.profile_transactions(conn, profile["id"])
        rates = catalog_service.rates(conn, app_id)
        before = _record(conn, app_id, profile, ledger, tx, now, rates)
        written = [(before, (tx.store, tx.store_transaction_id))]
        timestamp = recompute(rt, conn, profile, now, written, rates, ledger=ledger)
    return profiles_service.respond(profile, now, timestamp)


def import_transactions(rt: Runtime, app_id: UUID, customer_user_id: str, transactions: list[TransactionIn]) -> int:
    """Record a store's history for a customer_user_id in one database transaction,
    creating the profile when it has none: all of it lands, or none. Returns how many of the
    transactions changed the ledger (new ones, and ones recorded before that differ)."""
    for tx in transactions:
        rules.check_transaction(tx)
    now = rt.clock.now()
    try:
        with rt.db.write() as conn:
            profile = profiles_service.find_locked(conn, app_id, customer_user_id=customer_user_id)
            if profile is None:
                profile = profiles_service.insert_new(conn, rt, app_id, customer_user_id, now)
            ledger = repository.profile_transactions(conn, profile["id"])
            rates = catalog_service.rates(conn, app_id)
            written = [
                (_record(conn, app_id, profile, ledger, tx, now, rates), (tx.store, tx.store_transaction_id))
                for tx in transactions
            ]
            # A row recorded before is replaced in the ledger only when the import changed it.
            changed = sum(before is None or _in_ledger(ledger, *key) is not before for before, key in written)
            recompute(rt, conn, profile, now, written, rates, ledger=ledger, credits=False)
    except IntegrityError:
        raise profiles_service.already_exists() from None  # created by another writer at the same moment
    return changed


def grant_access_level(rt: Runtime, app_id: UUID, ref: ProfileRef, body: GrantIn) -> dict[str, Any]:
    return grant(rt, app_id, ref, body.access_level_id, body.starts_at, body.expires_at)


def grant(
    rt: Runtime,
    app_id: UUID,
    ref: ProfileRef,
    level_id: str,
    starts_at: datetime | None,
    expires_at: datetime | None,
    extend_days: int | None = None,
    source: dict[str, Any] | None = None,
    transaction: TransactionIn | None = None,
) -> dict[str, Any]:
    """Grant an access level from ``starts_at`` (default now) to ``expires_at`` (None: for ever).

    With ``extend_days``, the grant ends that many days after the level's
    current expiry when it is active now, else after now. ``source`` names what
    the grant stands for (store and ids); ``transaction`` is recorded with it,
    once (the legacy API's grant with a purchase).
    """
    now = rt.clock.now()
    starts_at = starts_at or now
    with rt.db.write() as conn:
        profile = profiles_service.lock(conn, app_id, ref)
        catalog_service.require_access_level(conn, app_id, level_id)
        if extend_days is not None:
            expires_at = _extended(_current_level(profile, level_id), now, extend_days)
        if expires_at is not None and expires_at <= starts_at:
            raise bad_request("value_error", "expires_at", "expires_at must be later than starts_at.")
        ledger = repository.profile_transactions(conn, profile["id"])
        written = []
        if transaction is not None:
            rates = catalog_service.rates(conn, app_id)
            before = _record(conn, app_id, profile, ledger, transaction, now, rates, update=False)
            written.append((before, (transaction.store, transaction.store_transaction_id)))
        repository.insert_grant(
            conn,
            {
                "id": uuid4(),
                "app_id": app_id,
                "profile_id": profile["id"],
                "access_level_id": level_id,
                "kind": "grant",
                "starts_at": starts_at,
                "expires_at": expires_at,
                "created_at": now,
                **(source or {}),
            },
        )
        timestamp = recompute(rt, conn, profile, now, written=written, ledger=ledger)
    return profiles_service.respond(profile, now, timestamp)


def _extended(level: dict[str, Any] | None, now: datetime, days: int) -> datetime | None:
    """``days`` after the level's expiry when it is active now (a lifetime level stays so), else after now."""
    moment = format_datetime(now)
    start = now
    if level is not None and level["starts_at"] <= moment:
        if level["expires_at"] is None:
            return None
        if moment < level["expires_at"]:
            start = parse_datetime(level["expires_at"])
    try:
        return start + timedelta(days=days)
    except OverflowError:
        raise bad_request("value_error", "duration_days", "The access level would end after the year 9999.") from None


def _current_level(profile: dict[str, Any], level_id: str) -> dict[str, Any] | None:
    """The level as the locked profile stores it: every ledger change re-derives it in its
    own transaction, so reading it back is the same as deriving it again, minus the work."""
    levels = (profile["derived"] or {}).get("access_levels", [])
    return next((level for level in levels if level["access_level_id"] == level_id), None)


def revoke_access_level(
    rt: Runtime, app_id: UUID, ref: ProfileRef, body: RevokeIn, refund: bool = False
) -> dict[str, Any]:
    """End an access level at ``revoke_at`` (default now); with ``refund``, the
    transaction the level stands on becomes a refund (legacy API)."""
    now = rt.clock.now()
    revoke_at = body.revoke_at or now
    with rt.db.write() as conn:
        profile = profiles_service.lock(conn, app_id, ref)
        catalog_service.require_access_level(conn, app_id, body.access_level_id)
        level = _current_level(profile, body.access_level_id)
        if level is None:
            raise bad_request(
                "profile_paid_access_level_does_not_exist",
                NON_FIELD,
                f"The profile has no paid access level `{body.access_level_id}`.",
            )
        if level["expires_at"] is not None and format_datetime(revoke_at) > level["expires_at"]:
            raise bad_request(
                "revocation_date_more_than_expiration_date",
                "revoke_at",
                "revoke_at is later than the access level's expires_at.",
            )
        ledger = repository.profile_transactions(conn, profile["id"])
        written = []
        if refund and level["store_transaction_id"] is not None:
            key = (level["store"], level["store_transaction_id"])
            linked = _in_ledger(ledger, *key)
            if linked is not None and linked["refunded_at"] is None:
                _update(conn, ledger, linked, {**rules.refund(linked, revoke_at), "updated_at": now})
                written.append((linked, key))
        repository.insert_grant(
            conn,
            {
                "id": uuid4(),
                "app_id": app_id,
                "profile_id": profile["id"],
                "access_level_id": body.access_level_id,
                "kind": "revoke",
                "starts_at": revoke_at,
                "expires_at": None,
                "created_at": now,
            },
        )
        timestamp = recompute(rt, conn, profile, now, written=written, ledger=ledger)
    return profiles_service.respond(profile, now, timestamp)


# Store integrations ----------------------------------------------------------


def fire_due_expiries(rt: Runtime, limit: int = 100) -> int:
    """Emit ``subscription_expired`` / ``trial_expired`` for chains whose time has passed."""

    def expired(expiry: dict[str, Any], chain: list[dict[str, Any]]) -> events_rules.Change:
        latest = max(chain, key=lambda tx: (tx["purchased_at"], tx["store_transaction_id"]))
        kind = "trial_expired" if events_rules.is_trial(latest) else "subscription_expired"
        return events_rules.Change(kind, expiry["due_at"], latest)

    return _fire_scheduled(rt, events_service.any_expiry_due, events_service.claim_due_expiries, expired, limit)


def fire_due_checks(rt: Runtime, limit: int = 100) -> int:
    """Emit ``trial_active`` / ``subscription_active`` for chains still going when their check is due."""

    def still_active(check: dict[str, Any], chain: list[dict[str, Any]]) -> events_rules.Change | None:
        latest = events_rules.still_active(check["event_type"], chain, check["due_at"])
        return None if latest is None else events_rules.Change(check["event_type"], check["due_at"], latest)

    return _fire_scheduled(rt, events_service.any_check_due, events_service.claim_due_checks, still_active, limit)


def _fire_scheduled(
    rt: Runtime,
    any_due: Callable[[Connection, datetime], bool],
    claim_due: Callable[[Connection, datetime, int], list[dict[str, Any]]],
    change_of: Callable[[dict[str, Any], list[dict[str, Any]]], Change | None],
    limit: int,
) -> int:
    """Claim what is due of one kind of scheduled event (each names a profile and a subscription
    chain) and emit the change ``change_of(item, chain)`` makes of each, if any."""
    now = rt.clock.now()
    with rt.db.read() as conn:  # most of the time none is: no write (on SQLite, the write lock) for nothing
        if not any_due(conn, now):
            return 0
    fired = 0
    with rt.db.write() as conn:
        for item in claim_due(conn, now, limit):
            profile = profiles_service.find_locked(conn, item["app_id"], profile_id=item["profile_id"])
            if profile is None:
                continue
            ledger = repository.profile_transactions(conn, profile["id"])
            key = (item["store"], item["store_original_transaction_id"])
            chain = [tx for tx in ledger if (tx["store"], tx["store_original_transaction_id"]) == key]
            change = change_of(item, chain) if chain else None
            if change is not None:
                events_service.emit(conn, rt, profile, [change], ledger, now)
                fired += 1
    return fired


def ledger_of(rt: Runtime, profile_id: UUID) -> list[dict[str, Any]]:
    """Every transaction of the profile (each renewal, refund and sandbox one), newest first."""
    with rt.db.lagging_read() as conn:
        ledger = repository.profile_transactions(conn, profile_id)
    return sorted(ledger, key=lambda tx: (tx["purchased_at"], tx["store_transaction_id"]), reverse=True)


def find_transaction(conn: Connection, app_id: UUID, store: str, store_transaction_id: str) -> dict[str, Any] | None:
    return repository.find_transaction(conn, app_id, store, store_transaction_id)


def products_bought(conn: Connection, profile_id: UUID) -> set[tuple[str, str]]:
    """The (store, store product id) of every transaction of the profile."""
    return {(tx["store"], tx["store_product_id"]) for tx in repository.profile_transactions(conn, profile_id)}


def chain_transactions(
    conn: Connection, profile_id: UUID, store: str, original_transaction_id: str
) -> list[dict[str, Any]]:
    """The transactions of one of the profile's subscription chains (or its one-time purchase)."""
    return [
        tx
        for tx in repository.profile_transactions(conn, profile_id)
        if (tx["store"], tx["store_original_transaction_id"]) == (store, original_transaction_id)
    ]


def chain_owner(conn: Connection, app_id: UUID, store: str, original_transaction_id: str) -> UUID | None:
    """The profile whose ledger holds this subscription chain (or one-time purchase)."""
    return repository.chain_owner(conn, app_id, store, original_transaction_id)


def record_store_account(
    rt: Runtime,
    conn: Connection,
    profile: dict[str, Any],
    store: str,
    transactions: Sequence[TransactionIn],
    refunds: dict[str, datetime],
    now: datetime,
) -> int:
    """Record what a store reports, in the caller's write transaction with the profile locked:
    its transactions (new or updated) and refunds of recorded ones. Returns the new timestamp."""
    for tx in transactions:
        rules.check_transaction(tx)
    app_id = profile["app_id"]
    ledger = repository.profile_transactions(conn, profile["id"])
    rates = catalog_service.rates(conn, app_id)
    written = [
        (_record(conn, app_id, profile, ledger, tx, now, rates), (tx.store, tx.store_transaction_id))
        for tx in transactions
    ]
    for store_transaction_id, at in refunds.items():
        row = _in_ledger(ledger, store, store_transaction_id)
        if row is None or row["refunded_at"] is not None:
            continue  # not this profile's, or refunded already
        _update(conn, ledger, row, {**rules.refund(row, at), "updated_at": now})
        written.append((row, (store, store_transaction_id)))
    return recompute(rt, conn, profile, now, written, rates, ledger=ledger)


# Catalog changes re-derive the profiles they touch ------------------------------


def _recompute_buyers(
    rt: Runtime, conn: Connection, app_id: UUID, row: dict[str, Any], old_catalog: Catalog, now: datetime
) -> int:
    """Re-derive the profiles that bought the product in ``row`` (its period moves their MRR).

    Every buyer is locked (in id order) before any is re-derived: a writer holding one of them
    could otherwise wait for a metric rollup row this transaction already updated.
    """
    buyers = sorted(repository.profiles_buying(conn, app_id, row["store"], row["store_product_id"]))
    locked = [profiles_service.find_locked(conn, app_id, profile_id) for profile_id in buyers]
    for profile in locked:
        if profile is not None:  # else deleted since
            recompute(rt, conn, profile, now, old_catalog=old_catalog)
    return len(buyers)


def add_product(rt: Runtime, app_id: UUID, body: ProductIn) -> dict[str, Any]:
    """Configure a product; profiles that already bought it get its access level now."""
    now = rt.clock.now()
    with rt.db.write() as conn:
        old_catalog = catalog_service.catalog(conn, app_id)
        row = catalog_service.add_product(conn, app_id, body, now)
        _recompute_buyers(rt, conn, app_id, row, old_catalog, now)
    return product_out(row)


def remove_product(rt: Runtime, app_id: UUID, product_id: UUID) -> None:
    now = rt.clock.now()
    with rt.db.write() as conn:
        old_catalog = catalog_service.catalog(conn, app_id)
        row = catalog_service.remove_product(conn, app_id, product_id)
        _recompute_buyers(rt, conn, app_id, row, old_catalog, now)
