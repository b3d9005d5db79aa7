"""Catalog use cases. Functions taking ``conn`` run inside a caller's transaction."""

from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import Connection

from subledger.apps.rules import DEFAULT_ACCESS_LEVEL
from subledger.catalog import repository, rules
from subledger.catalog.schemas import AccessLevelIn, ProductIn, access_level_out, product_out
from subledger.core import app_config
from subledger.core.errors import NON_FIELD, ApiError, bad_request
from subledger.core.runtime import Runtime


def unknown_access_level(level_id: str) -> ApiError:
    return bad_request("paid_access_level_does_not_exist", NON_FIELD, f"Paid access level `{level_id}` does not exist")


def create_access_level(rt: Runtime, app_id: UUID, body: AccessLevelIn) -> dict[str, Any]:
    now = rt.clock.now()
    with rt.db.write() as conn:
        if repository.access_level_exists(conn, app_id, body.access_level_id):
            raise bad_request(
                "access_level_already_exists", "access_level_id", f"`{body.access_level_id}` already exists."
            )
        repository.insert_access_level(conn, app_id, body.access_level_id, now)
    return access_level_out({"id": body.access_level_id, "created_at": now})


def list_access_levels(rt: Runtime, app_id: UUID) -> list[dict[str, Any]]:
    with rt.db.read() as conn:
        return [access_level_out(row) for row in repository.list_access_levels(conn, app_id)]


def delete_access_level(rt: Runtime, app_id: UUID, level_id: str) -> None:
    """Refused for the default level, and while a product unlocks the level or a profile was granted it."""
    with rt.db.write() as conn:
        if not repository.access_level_exists(conn, app_id, level_id):
            raise ApiError.one(404, "access_level_does_not_exist", None, "Access level not found")
        if level_id == DEFAULT_ACCESS_LEVEL:
            raise bad_request("default_access_level", NON_FIELD, f"`{level_id}` is every app's access level; it stays.")
        users = repository.products_unlocking(conn, app_id, level_id)
        if users:
            raise bad_request("access_level_in_use", NON_FIELD, f"Products unlock `{level_id}`: {', '.join(users)}.")
        if repository.access_level_granted(conn, app_id, level_id):
            raise bad_request("access_level_in_use", NON_FIELD, f"Profiles were granted `{level_id}`.")
        repository.delete_access_level(conn, app_id, level_id)


def require_access_level(conn: Connection, app_id: UUID, level_id: str) -> None:
    levels = app_config.cached(
        conn, app_id, "access_levels", lambda: frozenset(repository.access_level_ids(conn, app_id))
    )
    if level_id not in levels:
        raise unknown_access_level(level_id)


def add_product(conn: Connection, app_id: UUID, body: ProductIn, now: datetime) -> dict[str, Any]:
    if body.access_level_id is not None:
        require_access_level(conn, app_id, body.access_level_id)
    row = {
        "id": uuid4(),
        "app_id": app_id,
        **body.model_dump(),
        "store_base_plan_id": body.store_base_plan_id or "",
        "created_at": now,
    }
    if repository.product_configured(conn, app_id, body.store, body.store_product_id, row["store_base_plan_id"]):
        raise bad_request(
            "product_already_exists", NON_FIELD, "This store product (and base plan) is configured already."
        )
    repository.insert_product(conn, row)
    return row


def remove_product(conn: Connection, app_id: UUID, product_id: UUID) -> dict[str, Any]:
    row = repository.find_product(conn, app_id, product_id)
    if row is None:
        raise ApiError.one(404, "product_does_not_exist", None, "Product not found")
    repository.delete_product(conn, app_id, product_id)
    return row


def list_products(rt: Runtime, app_id: UUID) -> list[dict[str, Any]]:
    with rt.db.read() as conn:
        return [product_out(row) for row in repository.list_products(conn, app_id)]


def products_by_id(conn: Connection, app_id: UUID) -> dict[str, dict[str, Any]]:
    """The app's product rows keyed by product id (text)."""
    return {str(row["id"]): row for row in repository.list_products(conn, app_id)}


def catalog(conn: Connection, app_id: UUID) -> rules.Catalog:
    return app_config.cached(conn, app_id, "catalog", lambda: _read_catalog(conn, app_id))


def currency_grants(rt: Runtime, app_id: UUID) -> dict[str, list[tuple[str, int]]]:
    """What each of the app's products credits when bought, by product_id."""
    with rt.db.read() as conn:
        return {str(product_id): grants for product_id, grants in repository.currency_grants(conn, app_id).items()}


def _read_catalog(conn: Connection, app_id: UUID) -> rules.Catalog:
    grants = repository.currency_grants(conn, app_id)
    return rules.Catalog(
        [
            rules.Product(
                store=row["store"],
                store_product_id=row["store_product_id"],
                store_base_plan_id=row["store_base_plan_id"],
                access_level_id=row["access_level_id"],
                period=row["period"],
                is_consumable=row["is_consumable"],
                currency_grants=tuple(grants.get(row["id"], ())),
            )
            for row in repository.list_products(conn, app_id)
        ]
    )


def rates(conn: Connection, app_id: UUID) -> rules.Rates:
    """The exchange rates in force (every app's, kept with each app's configuration)."""
    return app_config.cached(conn, app_id, "rates", lambda: rates_in_force(conn))


def rates_in_force(conn: Connection) -> rules.Rates:
    """The exchange rates in force, read afresh in the caller's transaction."""
    loaded = repository.loaded_rates(conn)
    return rules.Rates([rules.Rate(row["currency"], Decimal(row["usd_per_unit"]), row["as_of"]) for row in loaded])


def pricing(conn: Connection, app_id: UUID) -> rules.Pricing:
    """The generation of rates the ledger is priced at (kept with each app's configuration)."""
    return app_config.cached(conn, app_id, "pricing", lambda: rules.Pricing.of(repository.ledger_pricing_row(conn)))


def repricing(conn: Connection) -> bool:
    """Whether profiles priced at the generation of rates before the one in force remain, read
    afresh in the caller's transaction."""
    return rules.Pricing.of(repository.ledger_pricing_row(conn)).previous is not None


def ledger_pricing(conn: Connection) -> dict[str, Any] | None:
    """The record of the rates the ledger is priced at (``rates_digest``, ``rates``, ``generation``,
    ``previous_rates``); None before the first."""
    return repository.ledger_pricing_row(conn)


def recorded_pricing(conn: Connection) -> dict[str, Any]:
    """``ledger_pricing`` where it must be there: once the ledger has been priced, which every
    repricing follows."""
    record = ledger_pricing(conn)
    if record is None:
        raise RuntimeError("the ledger's pricing is not recorded yet")
    return record


def price_ledger_at(conn: Connection, rates: rules.Rates, generation: int, previous: rules.Rates | None) -> None:
    """Record the rates the ledger is priced at: ``generation``, and the rates of the generation
    before while profiles priced at them remain."""
    repository.set_ledger_pricing(
        conn,
        {
            "rates_digest": rates.digest(),
            "rates": rates.snapshot(),
            "generation": generation,
            "previous_rates": None if previous is None else previous.snapshot(),
        },
    )


def load_rates(conn: Connection, text: str) -> int:
    """Load ``currency,usd_per_unit,as_of`` CSV rows over the shipped table, in the caller's
    transaction; ValueError on a bad line, or a rate that would make a recorded transaction
    worth more than a transaction may be (before anything is written)."""
    parsed = rules.parse_rates(text)
    new_rates = {rate.currency: rate.usd_per_unit for rate in parsed}
    for currency, largest in repository.largest_prices(conn, list(new_rates)):
        if largest * new_rates[currency] > rules.MAX_TRANSACTION_USD:
            raise ValueError(
                f"at {new_rates[currency]} USD per {currency}, a recorded transaction of {largest} {currency} "
                f"would be worth more than {rules.MAX_TRANSACTION_USD} USD"
            )
    if parsed:
        repository.upsert_rates(
            conn, [{"currency": r.currency, "usd_per_unit": str(r.usd_per_unit), "as_of": r.as_of} for r in parsed]
        )
    return len(parsed)


def list_rates(rt: Runtime) -> list[dict[str, Any]]:
    """Every rate in force: the shipped table with the loaded rates over it."""
    with rt.db.read() as conn:
        loaded = {row["currency"]: row for row in repository.loaded_rates(conn)}
    shipped = {
        rate.currency: {"currency": rate.currency, "usd_per_unit": rate.usd_per_unit, "as_of": rate.as_of}
        for rate in rules.default_rates()
    }
    merged = {**shipped, **loaded}
    return [
        {
            "currency": c,
            "usd_per_unit": str(merged[c]["usd_per_unit"]),
            "as_of": merged[c]["as_of"].isoformat(),
            "source": "loaded" if c in loaded else "shipped",
        }
        for c in sorted(merged)
    ]
