"""Bulk seeder: many profiles with monthly subscription histories, written straight into the
tables in large batches (the API would take hours for millions), each profile's derived state
computed by the same rules a write uses, so `subledger verify` finds nothing to fix, and
the metric rollups added up as writes would.

    python bench/seed.py --database-url sqlite:////tmp/big.db --profiles 1000000 --transactions 10

Profile n is ``seed-<n>``: a chain of monthly renewals at $9.99 (every 20th refunded, every
10th in EUR, one in 50 in the Sandbox) ending between six months ago and six months ahead,
so about half are active now.
"""

import argparse
import sys
import time
import uuid
from datetime import datetime, timedelta
from decimal import Decimal

from dateutil.relativedelta import relativedelta
from scratch import settle_statistics

from subledger.apps import service as apps_service
from subledger.catalog import service as catalog_service
from subledger.catalog.schemas import ProductIn
from subledger.config import Settings
from subledger.core.runtime import Runtime
from subledger.core.tables import profiles, transactions
from subledger.metrics import repository as metrics_repository
from subledger.metrics import rollup
from subledger.metrics import rules as metrics_rules
from subledger.purchases import repricing, rules
from subledger.purchases import service as purchases_service

BATCH = 5000


def _chain(n: int, app_id: uuid.UUID, profile_id: uuid.UUID, count: int, now: datetime) -> list[dict]:
    ends = now + timedelta(days=(n * 7919) % 365 - 182)
    start = ends - relativedelta(months=count)
    currency, price = ("EUR", Decimal("8.99")) if n % 10 == 0 else ("USD", Decimal("9.99"))
    rows = []
    for k in range(count):
        bought = start + relativedelta(months=k)
        refunded = bought + timedelta(days=2) if n % 20 == 0 and k == count - 1 else None
        rows.append(
            {
                "id": uuid.uuid4(),
                "app_id": app_id,
                "profile_id": profile_id,
                "purchase_type": "subscription",
                "store": "app_store",
                "environment": "Sandbox" if n % 50 == 0 else "Production",
                "store_product_id": "monthly",
                "store_base_plan_id": None,
                "store_transaction_id": f"seed-{n}-{k}",
                "store_original_transaction_id": f"seed-{n}-0",
                "offer_category": None,
                "offer_type": None,
                "offer_id": None,
                "is_family_shared": False,
                "price_country": "FR" if currency == "EUR" else "US",
                "price_currency": currency,
                "price_value": price,
                "purchased_at": bought,
                "refunded_at": refunded,
                "cancellation_reason": "refund" if refunded else None,
                "variation_id": None,
                "originally_purchased_at": start,
                "expires_at": bought + relativedelta(months=1),
                "renew_status": k < count - 1 or ends > now,
                "renew_status_changed_at": None,
                "billing_issue_detected_at": None,
                "grace_period_expires_at": None,
                "created_at": bought,
                "updated_at": bought,
            }
        )
    return rows


def seed(rt: Runtime, count: int, per_profile: int, app_id: uuid.UUID | None = None, first: int = 0) -> dict:
    """Seed profiles ``first`` to ``count - 1`` into an app (a new one unless given); returns the
    app's create output (its key only for a new app)."""
    now = rt.clock.now()
    app = {"app_id": str(app_id)} if app_id else apps_service.create_app(rt.db, "Scale", now)
    app_id = uuid.UUID(app["app_id"])
    if not catalog_service.list_products(rt, app_id):
        purchases_service.add_product(
            rt,
            app_id,
            ProductIn(store="app_store", store_product_id="monthly", access_level_id="premium", period="P1M"),
        )
    with rt.db.read() as conn:
        catalog, rates = catalog_service.catalog(conn, app_id), catalog_service.rates(conn, app_id)
    started = time.monotonic()
    for batch_start in range(first, count, BATCH):
        profile_rows, ledger_rows, coverage = [], [], {}
        totals = rollup.Totals()
        for n in range(batch_start, min(batch_start + BATCH, count)):
            profile_id = uuid.uuid4()
            ledger = _chain(n, app_id, profile_id, per_profile, now)
            derived = rules.derive(profile_id, ledger, [], catalog, rates)
            created = ledger[0]["purchased_at"]
            profile_rows.append(
                {
                    "id": profile_id,
                    "app_id": app_id,
                    "customer_user_id": f"seed-{n}",
                    "analytics_disabled": False,
                    "custom_attributes": {},
                    "created_at": created,
                    "updated_at": created,
                    "last_timestamp_ms": 0,
                    "derived": derived.stored(),
                    "total_revenue_usd": derived.total_revenue_usd,
                }
            )
            ledger_rows += ledger
            tally = rollup.tally(metrics_rules.ledger_rows(ledger, catalog, rates), now - timedelta(days=1))
            totals.absorb(tally)
            coverage[profile_id] = tally.coverage
        with rt.db.write() as conn:
            conn.execute(profiles.insert(), profile_rows)
            conn.execute(transactions.insert(), ledger_rows)
            metrics_repository.add_to_rollups(conn, app_id, 0, totals.rows())
            metrics_repository.add_coverage(conn, app_id, coverage)
        done = min(batch_start + BATCH, count)
        rate = (done - first) / (time.monotonic() - started)
        print(f"\r{done}/{count} profiles ({rate:.0f}/s)", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return app


def seeded_app_key(rt: Runtime) -> str:
    """A new secret API key for the seeded app (the database's first)."""
    app_id = uuid.UUID(apps_service.list_apps(rt.db, rt.clock.now())[0]["app_id"])
    return apps_service.rotate_key(rt.db, app_id, rt.clock.now())["secret_api_key"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--profiles", type=int, default=1_000_000)
    parser.add_argument("--transactions", type=int, default=10, help="per profile")
    parser.add_argument("--app", type=uuid.UUID, default=None, help="go on seeding this app (from --first)")
    parser.add_argument("--first", type=int, default=0, help="the first profile number to seed")
    options = parser.parse_args()
    # A bulk load that fails is simply done again: SQLite need not wait for the disk on each batch.
    settings = Settings(database_url=options.database_url, serve_worker="off", sqlite_synchronous="OFF")
    rt = Runtime.from_settings(settings)
    rt.db.migrate()
    repricing.reprice(rt)  # as `subledger migrate` does: records the rates the ledger is priced at
    app = seed(rt, options.profiles, options.transactions, options.app, options.first)
    settle_statistics(rt.db)
    print(app)


if __name__ == "__main__":
    main()
