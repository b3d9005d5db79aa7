"""The export walks an app's profiles and transactions page by page: every one once, no other app's."""

import uuid

from support.api import new_app
from support.metrics import subscription

from subledger.analytics import service as analytics_service

HISTORIES = {"p0": 0, "p1": 3, "p2": 1, "p3": 0, "p4": 2, "p5": 1}  # transactions of each profile


def test_pages_of_profiles_and_of_their_transactions_hold_each_once(api, runtime, client, monkeypatch):
    other = new_app(runtime, client, "Other")
    for shop in (api, other):
        shop.product("monthly", "premium", "P1M")
    for user, count in HISTORIES.items():
        assert api.create(user).status_code == 200
        for n in range(count):
            body = subscription(f"{user}-{n}", f"{user}-0", f"2025-0{n + 1}-01", f"2025-0{n + 2}-01", 9.99)
            assert api.set_transaction(user, **body).status_code == 200
    assert other.create("p1").status_code == 200
    assert (
        other.set_transaction("p1", **subscription("x-0", "x-0", "2025-01-01", "2025-02-01", 9.99)).status_code == 200
    )
    monkeypatch.setattr(analytics_service, "PAGE", 2)  # 6 profiles: the last page is full, then one empty

    app_id = uuid.UUID(api.app_id)
    exported = list(analytics_service.export_rows(runtime, app_id, "transactions", flat=False))
    held = sorted((row["customer_user_id"], row["store_transaction_id"]) for row in exported)
    assert held == sorted((user, f"{user}-{n}") for user, count in HISTORIES.items() for n in range(count))
    assert analytics_service.export_size(runtime, app_id, "transactions") == len(exported) == 7

    profiles = list(analytics_service.export_rows(runtime, app_id, "profiles", flat=False))
    assert sorted(row["customer_user_id"] for row in profiles) == sorted(HISTORIES)
