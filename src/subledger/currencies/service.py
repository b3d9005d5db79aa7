"""Virtual currency use cases: the contract's transactions, balances and history, the app's
currencies, and the credits purchases of products bring."""

import base64
import binascii
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import Connection

from subledger.catalog.rules import Catalog
from subledger.core.errors import bad_request
from subledger.core.profile_ref import ProfileRef
from subledger.core.runtime import Runtime
from subledger.currencies import repository, rules
from subledger.currencies.schemas import TransactionIn
from subledger.profiles import service as profiles_service

# The contract's endpoints ----------------------------------------------------------


def _enabled(conn: Connection, app_id: UUID) -> None:
    if not repository.enabled(conn, app_id):
        raise rules.feature_not_enabled()


def _snapshot(code: str, name: str, balance: int) -> dict[str, Any]:
    return {"code": code, "name": name, "balance": balance, "held": 0, "available": balance}


def _apply(
    conn: Connection,
    profile_id: UUID,
    app_id: UUID,
    held: dict[str, int],
    items: list[tuple[str, int]],
    kind: str,
    now: datetime,
    metadata: dict[str, str] | None = None,
    source: str | None = None,
) -> tuple[UUID, dict[str, int]] | None:
    """Apply ``items`` to the profile's balances (``held``, as the caller read them holding the
    profile's lock) as one transaction of ``kind`` and keep it in the history: its id and the
    balances after, or None when ``source`` was applied as ``kind`` before. Each transaction of
    a profile is made after the one before it, so that the history reads in the order of the
    balances' changes."""
    after = rules.balances_after(held, items)
    latest = repository.latest(conn, profile_id)
    if latest is not None and latest >= now:  # a clock behind: the history keeps its order
        now = latest + timedelta(microseconds=1)
    transaction_id = rules.transaction_id(now)
    values = {
        "id": transaction_id,
        "app_id": app_id,
        "profile_id": profile_id,
        "transaction_type": kind,
        "meta": metadata,
        "source": source,
        "created_at": now,
    }
    lines = [{"currency_code": code, "amount": amount, "balance_after": after[code]} for code, amount in items]
    if not repository.insert_transaction(conn, values, lines):
        return None
    repository.save_balances(conn, profile_id, after)
    return transaction_id, after


def transact(rt: Runtime, app_id: UUID, ref: ProfileRef, body: TransactionIn, kind: str = rules.API) -> dict[str, Any]:
    """Credit and debit the profile's currencies, all of the items or none."""
    items = rules.checked_items((item.currency_code, item.amount) for item in body.items)
    now = rt.clock.now()
    with rt.db.write() as conn:
        _enabled(conn, app_id)
        profile = profiles_service.lock(conn, app_id, ref)
        names = repository.currencies(conn, app_id)
        for code, _amount in items:
            if code not in names:
                raise rules.unknown_currency(code)
        held = repository.balances(conn, profile["id"])
        applied = _apply(conn, profile["id"], app_id, held, items, kind, now, body.metadata)
        assert applied is not None  # only a transaction from a source is ever applied before
        transaction_id, after = applied
    return {
        "transaction_id": str(transaction_id),
        "balances": [_snapshot(code, names[code], after[code]) for code, _amount in items],
    }


def _balances(conn: Connection, app_id: UUID, profile_id: UUID) -> list[dict[str, Any]]:
    """Every currency of the app with the profile's balance of it (0 for one it never had)."""
    held = repository.balances(conn, profile_id)
    return [_snapshot(code, name, held.get(code, 0)) for code, name in repository.currencies(conn, app_id).items()]


def balances(rt: Runtime, app_id: UUID, ref: ProfileRef) -> dict[str, Any]:
    with rt.db.read() as conn:
        _enabled(conn, app_id)
        data = _balances(conn, app_id, profiles_service.load(conn, app_id, ref)["id"])
    return {"response_created_at": int(rt.clock.now().timestamp() * 1000), "data": data}


def _instant(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _cursor(row: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(f"{_instant(row['created_at'])}{row['id']}".encode()).decode()


def _after_cursor(cursor: str) -> tuple[datetime, UUID]:
    """The (created_at, id) a cursor points past; the contract's 400 for one it did not give."""
    try:
        text = base64.urlsafe_b64decode(cursor.encode("ascii")).decode("ascii")
        return datetime.fromisoformat(text[:-36]).astimezone(UTC), UUID(text[-36:])
    except (ValueError, UnicodeError, binascii.Error):
        raise bad_request("invalid_cursor", "cursor", "Invalid cursor.") from None


def _history_item(row: dict[str, Any]) -> dict[str, Any]:
    """The contract's VirtualCurrencyTransactionsHistoryItem."""
    item = {
        "transaction_id": str(row["id"]),
        "transaction_type": row["transaction_type"],
        "items": [{name: line[name] for name in ("currency_code", "amount", "balance_after")} for line in row["items"]],
    }
    if row["meta"] is not None:
        item["metadata"] = row["meta"]
    item["created_at"] = _instant(row["created_at"])
    return item


def history(
    rt: Runtime, app_id: UUID, ref: ProfileRef, currency_code: str | None, cursor: str | None, limit: int
) -> dict[str, Any]:
    """The profile's transactions newest first, ``limit`` at a time."""
    before = None if cursor is None else _after_cursor(cursor)
    with rt.db.read() as conn:
        _enabled(conn, app_id)
        profile = profiles_service.load(conn, app_id, ref)
        rows = repository.history(conn, profile["id"], currency_code, before, limit + 1)
    page = rows[:limit]
    next_cursor = _cursor(page[-1]) if len(rows) > limit else None
    return {"data": [_history_item(row) for row in page], "pagination": {"next_cursor": next_cursor}}


def wallet(rt: Runtime, app_id: UUID, profile_id: UUID, limit: int = 20) -> dict[str, Any]:
    """A profile's balances and its latest transactions, for the dashboard (whether or not the
    API's endpoints are on)."""
    with rt.db.read() as conn:
        found = _balances(conn, app_id, profile_id)
        rows = repository.history(conn, profile_id, None, None, limit)
    return {"balances": found, "transactions": [_history_item(row) for row in rows]}


# Credits from purchases -------------------------------------------------------------


def settle(
    conn: Connection,
    profile: dict[str, Any],
    catalog: Catalog,
    written: Iterable[tuple[dict[str, Any] | None, dict[str, Any]]],
    now: datetime,
) -> None:
    """For each transaction the ledger just recorded, (the row before or None, the row now):
    credit what its product grants when it is new, and take that back (as far as the balance
    allows) when it is refunded; each once. Trials credit nothing, and a credit stops at the
    largest balance there may be rather than refuse the purchase. The caller holds the profile's lock."""
    for before, tx in written:
        product = catalog.product(tx["store"], tx["store_product_id"], tx["store_base_plan_id"])
        if product is None or not product.currency_grants:
            continue
        refunded = tx["refunded_at"] is not None and (before is None or before["refunded_at"] is None)
        bought = before is None and tx["refunded_at"] is None and tx["offer_type"] != "free_trial"
        if not (refunded or bought):
            continue
        source = f"{tx['store']}:{tx['store_transaction_id']}"
        held = repository.balances(conn, profile["id"])
        if refunded:
            credited = repository.item_totals(conn, profile["id"], source)
            items = [(code, -min(amount, held.get(code, 0))) for code, amount in credited.items() if amount > 0]
            kind = rules.REFUND
        else:
            items = [
                (code, min(amount, rules.MAX_BALANCE - held.get(code, 0))) for code, amount in product.currency_grants
            ]
            first = tx["store_transaction_id"] == tx["store_original_transaction_id"]
            kind = rules.PURCHASE if first else rules.RENEWAL
        items = [(code, amount) for code, amount in items if amount]
        if items:
            _apply(conn, profile["id"], profile["app_id"], held, items, kind, now, source=source)


def unbalanced(conn: Connection, profile_id: UUID, fix: bool = False) -> bool:
    """Whether the profile's balances differ from the sums of their history (with ``fix``, set
    to those sums: the history is the record)."""
    held = {code: value for code, value in repository.balances(conn, profile_id).items() if value}
    totals = {code: value for code, value in repository.item_totals(conn, profile_id).items() if value}
    if held == totals:
        return False
    if fix:
        repository.save_balances(conn, profile_id, {code: totals.get(code, 0) for code in held.keys() | totals.keys()})
    return True


# The app's currencies (admin API, command line) ------------------------------------


def settings(rt: Runtime, app_id: UUID) -> dict[str, Any]:
    with rt.db.read() as conn:
        enabled = repository.enabled(conn, app_id)
        names = repository.currencies(conn, app_id)
    return {"enabled": enabled, "currencies": [{"code": code, "name": name} for code, name in names.items()]}


def enable(rt: Runtime, app_id: UUID, enabled: bool) -> dict[str, Any]:
    with rt.db.write() as conn:
        repository.set_enabled(conn, app_id, enabled)
    return settings(rt, app_id)


def add_currency(rt: Runtime, app_id: UUID, code: str, name: str) -> dict[str, Any]:
    with rt.db.write() as conn:
        if not repository.insert_currency(
            conn, {"app_id": app_id, "code": rules.checked_code(code), "name": name, "created_at": rt.clock.now()}
        ):
            raise rules.CurrencyError(f"the app has a currency {code} already")
    return {"code": code, "name": name}


def rename_currency(rt: Runtime, app_id: UUID, code: str, name: str) -> dict[str, Any]:
    with rt.db.write() as conn:
        if not repository.rename_currency(conn, app_id, code, name):
            raise rules.CurrencyError(f"the app has no currency {code}")
    return {"code": code, "name": name}


def remove_currency(rt: Runtime, app_id: UUID, code: str) -> None:
    """Delete a currency no balance, transaction or product has used."""
    with rt.db.write() as conn:
        if repository.currency_used(conn, app_id, code):
            raise rules.CurrencyError(f"currency {code} has a history or is granted by a product: it stays")
        if not repository.delete_currency(conn, app_id, code):
            raise rules.CurrencyError(f"the app has no currency {code}")


def set_product_grants(rt: Runtime, app_id: UUID, product_id: UUID, grants: list[tuple[str, int]]) -> dict[str, Any]:
    """What buying the product credits from now on (an empty list: nothing)."""
    codes = [code for code, _amount in grants]
    if len(set(codes)) != len(codes):
        raise rules.CurrencyError("each currency may be granted once")
    with rt.db.write() as conn:
        if not repository.product_exists(conn, app_id, product_id):
            raise rules.CurrencyError(f"the app has no product {product_id}")
        names = repository.currencies(conn, app_id)
        for code in codes:
            if code not in names:
                raise rules.CurrencyError(f"the app has no currency {code}")
        repository.set_product_grants(conn, app_id, product_id, grants)
    return {"product_id": str(product_id), "grants": [{"currency_code": c, "amount": a} for c, a in grants]}
