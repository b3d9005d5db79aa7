"""A hand-computed ledger for the metrics, the metrics API, and renewals to build ledgers with."""

from datetime import UTC, datetime, timedelta

import pytest

from subledger.core.dates import format_datetime

NOW = datetime(2025, 3, 15, 12, 0, tzinfo=UTC)


def at(day: str) -> str:
    return f"{day}T00:00:00.000000+0000"


def subscription(tx_id: str, chain: str, bought: str, expires: str, value: float, **extra) -> dict:
    return {
        "purchase_type": "subscription",
        "store": "app_store",
        "store_product_id": "monthly",
        "store_transaction_id": tx_id,
        "store_original_transaction_id": chain,
        "price": {"country": "US", "currency": "USD", "value": value},
        "purchased_at": at(bought),
        "originally_purchased_at": at(bought),
        "expires_at": at(expires),
        "renew_status": True,
        **extra,
    }


@pytest.fixture
def ledger(api, clock):
    """
    a: monthly a1 (Jan 5), renewed Feb 5 and Mar 5, $10 each.
    b: a free trial from Jan 10 to Jan 17, then paid $10 from Jan 17 to Feb 17, then nothing.
    c: yearly $120 bought Jan 20, refunded Feb 1.
    d: a free trial Feb 12 to Feb 19, never paid.
    e: a Sandbox purchase (excluded by default).
    a, b, c exist from Jan 1; d and e from Feb 10. Now: Mar 15, noon.
    """
    api.product("monthly", "premium", "P1M")
    api.product("yearly", "premium", "P1Y")
    clock.current = datetime(2025, 1, 1, tzinfo=UTC)
    for user in "abc":
        api.create(user)
    clock.current = datetime(2025, 2, 10, tzinfo=UTC)
    for user in "de":
        api.create(user)
    clock.current = NOW
    trial = {"offer": {"category": "introductory", "type": "free_trial"}}
    bodies = [
        ("a", subscription("a1", "a1", "2025-01-05", "2025-02-05", 10)),
        ("a", subscription("a2", "a1", "2025-02-05", "2025-03-05", 10)),
        ("a", subscription("a3", "a1", "2025-03-05", "2025-04-05", 10)),
        ("b", subscription("b1", "b1", "2025-01-10", "2025-01-17", 0, **trial)),
        ("b", subscription("b2", "b1", "2025-01-17", "2025-02-17", 10, renew_status=False)),
        (
            "c",
            subscription(
                "c1",
                "c1",
                "2025-01-20",
                "2026-01-20",
                120,
                store_product_id="yearly",
                refunded_at=at("2025-02-01"),
                cancellation_reason="refund",
            ),
        ),
        ("d", subscription("d1", "d1", "2025-02-12", "2025-02-19", 0, **trial)),
        ("e", subscription("e1", "e1", "2025-02-01", "2025-03-01", 10, environment="Sandbox")),
    ]
    for user, body in bodies:
        assert api.set_transaction(user, **body).status_code == 200
    return api


def metrics(api, **params):
    response = api.admin("GET", "/metrics/?" + "&".join(f"{k}={v}" for k, v in params.items()))
    assert response.status_code == 200, response.text
    return response.json()


def renewal_body(chain: str, tx_id: str, product: str, bought: datetime, days: int, price: float, **extra) -> dict:
    return {
        "purchase_type": "subscription",
        "store": "app_store",
        "store_product_id": product,
        "store_transaction_id": tx_id,
        "store_original_transaction_id": chain,
        "price": {"country": extra.pop("country", "US"), "currency": extra.pop("currency", "USD"), "value": price},
        "purchased_at": format_datetime(bought),
        "originally_purchased_at": extra.pop("originally", format_datetime(bought)),
        "expires_at": format_datetime(bought + timedelta(days=days)),
        "renew_status": True,
        **extra,
    }
