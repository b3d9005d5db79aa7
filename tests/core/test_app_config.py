"""Each server process keeps its apps' configuration in memory; a change made through
any process shows in every other one from its next request."""

from uuid import UUID

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from support.api import Api
from support.database import database_for
from support.purchases import subscription
from support.receiver import Receiver

from subledger.app import create_app
from subledger.apps import service as apps_service
from subledger.core import app_config
from subledger.core.runtime import Runtime
from subledger.core.tables import deliveries
from subledger.purchases import repricing


@pytest.fixture
def other(runtime, api):
    """The same app served by a second process: a runtime with its own engine, so its own cache."""
    rt = Runtime(settings=runtime.settings, db=database_for(runtime.settings), clock=runtime.clock)
    with TestClient(create_app(rt)) as client:
        yield Api(client, api.secret, api.app_id)
    rt.db.dispose()


def _levels(response) -> set[str]:
    assert response.status_code == 200, response.text
    return {level["access_level_id"] for level in response.json()["data"]["access_levels"]}


def test_catalog_and_access_level_changes_reach_the_other_process(api, other):
    """Each change is followed by a write through the other process that depends on it alone."""
    api.product("monthly", "premium", "P1M")
    other.create("u")
    assert _levels(other.set_transaction("u", **subscription())) == {"premium"}  # its cache is warm now

    api.access_level("spare")
    assert other.grant("u", access_level_id="absent").status_code == 400  # it knows "spare" now
    api.access_level("gold")
    assert _levels(other.grant("u", access_level_id="gold")) == {"premium", "gold"}
    assert api.admin("DELETE", "/access-levels/spare/").status_code == 204
    assert other.grant("u", access_level_id="spare").status_code == 400

    api.access_level("plus")
    assert other.grant("u", access_level_id="gold").status_code == 200  # knows the catalog with "plus"
    api.product("yearly", "plus", "P1Y")
    body = subscription(store_product_id="yearly", store_transaction_id="tx-2", store_original_transaction_id="o-2")
    assert _levels(other.set_transaction("u", **body)) == {"premium", "gold", "plus"}

    monthly = next(p for p in api.admin("GET", "/products/").json()["data"] if p["store_product_id"] == "monthly")
    assert api.admin("DELETE", f"/products/{monthly['product_id']}/").status_code == 204
    body = subscription(store_transaction_id="tx-3", store_original_transaction_id="o-3")
    assert _levels(other.set_transaction("u", **body)) == {"gold", "plus"}  # "monthly" unlocks nothing now


def _buy_in_euros(api: Api, customer_user_id: str) -> dict:
    api.create(customer_user_id)
    euros = {"country": "DE", "currency": "EUR", "value": 10}
    body = subscription(
        store_transaction_id=customer_user_id, store_original_transaction_id=customer_user_id, price=euros
    )
    response = api.set_transaction(customer_user_id, **body)
    assert response.status_code == 200, response.text
    return response.json()["data"]


def _started(api: Api, customer_user_id: str) -> dict:
    feed = api.client.get("/api/admin/v1/events/", params={"limit": 100}, headers=api.headers()).json()["data"]
    [event] = [
        e for e in feed if e["event_type"] == "subscription_started" and e["customer_user_id"] == customer_user_id
    ]
    return event["payload"]["event_properties"]


def test_settings_rates_and_endpoints_reach_the_other_process(runtime, api, other):
    api.product("monthly", "premium", "P1M")
    _buy_in_euros(other, "warm")
    assert _started(api, "warm")["tax_amount_local"] == 0.0

    apps_service.configure(runtime.db, UUID(api.app_id), tax_rate="0.25")
    _buy_in_euros(other, "taxed")
    assert _started(api, "taxed")["tax_amount_local"] == 2.0  # 25% included in 10

    repricing.load_rates(runtime, "currency,usd_per_unit,as_of\nEUR,2,2025-01-01\n")
    assert _buy_in_euros(other, "new-rate")["total_revenue_usd"] == 20.0

    with Receiver() as receiver:
        endpoint = {"url": receiver.url, "event_types": ["profile_created", "subscription_started"]}
        response = api.admin("POST", "/webhooks/", endpoint)
        assert response.status_code == 201, response.text
    assert _deliveries(runtime) == 0
    assert other.create("seen").status_code == 200
    assert _deliveries(runtime) == 1  # its profile_created, though that process had no endpoint cached
    _buy_in_euros(other, "delivered")
    delivered = _deliveries(runtime)
    assert delivered > 0  # the new endpoint gets the events

    assert api.admin("DELETE", f"/webhooks/{response.json()['data']['endpoint_id']}/").status_code == 204
    _buy_in_euros(other, "not-delivered")
    assert _deliveries(runtime) == 0  # they went with the endpoint, and no new ones came


def _deliveries(runtime) -> int:
    with runtime.db.read() as conn:
        return len(conn.execute(select(deliveries.c.id)).all())


def test_a_change_that_rolls_back_leaves_nothing_in_the_cache(runtime, api):
    """A transaction that changed the configuration reads around the cache: had it filled
    it, the value it read would outlive its rollback under the version the next change takes."""
    app_id = UUID(api.app_id)
    second = database_for(runtime.settings)
    try:
        with runtime.db.write() as conn:
            assert app_config.cached(conn, app_id, "part", lambda: "first") == "first"
        with pytest.raises(RuntimeError), runtime.db.write() as conn:
            app_config.changed(conn, app_id)
            assert app_config.cached(conn, app_id, "part", lambda: "rolled back") == "rolled back"
            raise RuntimeError
        with second.write() as conn:
            app_config.changed(conn, app_id)  # another process's change commits
        with runtime.db.write() as conn:
            assert app_config.cached(conn, app_id, "part", lambda: "after") == "after"
            assert app_config.cached(conn, app_id, "part", lambda: "not read again") == "after"
    finally:
        second.dispose()
