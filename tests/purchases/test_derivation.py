"""The pure derivation of access from a ledger: time edges, and order independence."""

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from subledger.catalog.rules import Catalog, Product, Rates
from subledger.core.dates import format_datetime
from subledger.profiles.rules import active_access_levels, render_state
from subledger.purchases.rules import derive

PROFILE = uuid.UUID("00000000-0000-0000-0000-000000000001")
START = datetime(2025, 1, 1, tzinfo=UTC)
CATALOG = Catalog(
    [
        Product("app_store", "monthly", "", "premium", "P1M", False),
        Product("app_store", "yearly", "", "premium", "P1Y", False),
        Product("app_store", "forever", "", "premium", "lifetime", False),
        Product("play_store", "pro", "", "pro", "P1M", False),
    ]
)
RATES = Rates([])


def tx(n: int, product="monthly", store="app_store", original=None, days=0, length=30, **extra) -> dict:
    purchased = START + timedelta(days=days)
    row = {
        "purchase_type": "subscription",
        "store": store,
        "environment": "Production",
        "store_product_id": product,
        "store_base_plan_id": None,
        "store_transaction_id": f"tx-{n}",
        "store_original_transaction_id": original or f"orig-{n}",
        "offer_category": None,
        "offer_type": None,
        "offer_id": None,
        "is_family_shared": False,
        "price_country": "US",
        "price_currency": "USD",
        "price_value": Decimal("9.99"),
        "purchased_at": purchased,
        "refunded_at": None,
        "cancellation_reason": None,
        "variation_id": None,
        "originally_purchased_at": None,
        "expires_at": purchased + timedelta(days=length),
        "renew_status": True,
        "renew_status_changed_at": None,
        "billing_issue_detected_at": None,
        "grace_period_expires_at": None,
    }
    row.update(extra)
    return row


def grant(n: int, kind="grant", level="premium", days=0, length=None) -> dict:
    starts = START + timedelta(days=days)
    return {
        "id": uuid.UUID(int=n),
        "kind": kind,
        "access_level_id": level,
        "starts_at": starts,
        "expires_at": None if length is None else starts + timedelta(days=length),
    }


def active_at(moment: datetime, transactions=(), grants=()) -> list[str]:
    derived = derive(PROFILE, list(transactions), list(grants), CATALOG, RATES)
    now = format_datetime(moment)
    return active_access_levels(render_state(derived.stored(), now), now)


def test_active_from_start_inclusive_to_expiry_exclusive():
    ledger = [tx(1, days=10)]
    start, end = START + timedelta(days=10), START + timedelta(days=40)
    assert active_at(start - timedelta(microseconds=1), ledger) == []
    assert active_at(start, ledger) == ["premium"]
    assert active_at(end - timedelta(microseconds=1), ledger) == ["premium"]
    assert active_at(end, ledger) == []


def test_grace_period_keeps_access_until_it_ends():
    expiry = START + timedelta(days=30)
    ledger = [tx(1, billing_issue_detected_at=expiry, grace_period_expires_at=expiry + timedelta(days=6))]
    assert active_at(expiry + timedelta(days=3), ledger) == ["premium"]
    assert active_at(expiry + timedelta(days=6), ledger) == []


def test_a_refund_ends_access_at_the_refund_time():
    refund = START + timedelta(days=5)
    ledger = [tx(1, refunded_at=refund, cancellation_reason="refund")]
    assert active_at(refund - timedelta(seconds=1), ledger) == ["premium"]
    assert active_at(refund, ledger) == []
    assert derive(PROFILE, ledger, [], CATALOG, RATES).total_revenue_usd == 0


def test_lifetime_purchases_never_expire():
    ledger = [tx(1, product="forever", purchase_type="one_time_purchase", expires_at=None)]
    assert active_at(START + timedelta(days=365 * 80), ledger) == ["premium"]


def test_several_products_combine_to_the_furthest_reach():
    ledger = [tx(1, length=30), tx(2, product="yearly", days=5, length=365), tx(3, days=20, length=30)]
    [level] = derive(PROFILE, ledger, [], CATALOG, RATES).access_levels
    assert level["store_transaction_id"] == "tx-2"
    assert active_at(START + timedelta(days=300), ledger) == ["premium"]


def test_revocation_cuts_earlier_sources_only():
    ledger = [tx(1, length=30)]
    revocations = [grant(1, kind="revoke", days=10)]
    assert active_at(START + timedelta(days=11), ledger, revocations) == []
    later = [*ledger, tx(2, days=20, length=30)]
    assert active_at(START + timedelta(days=25), later, revocations) == ["premium"]


def test_a_future_grant_is_not_active_yet():
    assert active_at(START, grants=[grant(1, days=3, length=5)]) == []
    assert active_at(START + timedelta(days=3), grants=[grant(1, days=3, length=5)]) == ["premium"]


transactions = st.lists(
    st.builds(
        lambda n, product, chain, days, length, refund, cancel: tx(
            n,
            product=product,
            store="play_store" if product == "pro" else "app_store",
            original=f"chain-{chain}",
            days=days,
            length=length,
            refunded_at=START + timedelta(days=days + 1) if refund else None,
            cancellation_reason="refund" if refund else None,
            renew_status=not cancel,
        ),
        n=st.integers(0, 10_000),
        product=st.sampled_from(["monthly", "yearly", "forever", "pro", "unmapped"]),
        chain=st.integers(0, 3),
        days=st.integers(0, 400),
        length=st.integers(1, 400),
        refund=st.booleans(),
        cancel=st.booleans(),
    ),
    max_size=12,
    unique_by=lambda row: row["store_transaction_id"],
)
grants = st.lists(
    st.builds(
        grant,
        n=st.integers(0, 10_000),
        kind=st.sampled_from(["grant", "revoke"]),
        level=st.sampled_from(["premium", "pro"]),
        days=st.integers(0, 400),
        length=st.one_of(st.none(), st.integers(1, 100)),
    ),
    max_size=4,
    unique_by=lambda row: row["id"],
)


@settings(max_examples=200, deadline=None)
@given(transactions, grants, st.randoms(use_true_random=False))
def test_the_order_of_the_ledger_does_not_change_the_derived_state(ledger, entries, random):
    expected = derive(PROFILE, ledger, entries, CATALOG, RATES)
    shuffled_ledger, shuffled_entries = ledger[:], entries[:]
    random.shuffle(shuffled_ledger)
    random.shuffle(shuffled_entries)
    assert derive(PROFILE, shuffled_ledger, shuffled_entries, CATALOG, RATES) == expected
