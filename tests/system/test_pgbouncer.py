"""Behind PgBouncer in transaction pooling mode, where consecutive transactions of one client
connection run on different server connections: with ``database_transaction_pooling`` every
request answers as it does straight on PostgreSQL."""

from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from support.api import new_app
from support.clock import FakeClock

from subledger.app import create_app
from subledger.config import Settings
from subledger.core.db import Database
from subledger.core.runtime import Runtime


def _same_query_on_many_connections(db: Database) -> None:
    """Three client connections at once, each running one statement ten times: more than
    psycopg needs to prepare it, on more connections than the pooler has to the server."""

    def ten_reads(_: int) -> None:
        with db.engine.connect() as conn:
            for number in range(10):
                assert conn.execute(text("SELECT CAST(:n AS integer) + 1"), {"n": number}).scalar() == number + 1
                conn.commit()

    with ThreadPoolExecutor(3) as threads:
        list(threads.map(ten_reads, range(3)))


def test_server_side_prepared_statements_break_behind_the_pooler(pooled_postgresql_url):
    """What the setting is for: psycopg's prepared statements meet another client's, or miss their own."""
    db = Database(Settings(database_url=pooled_postgresql_url).sqlalchemy_url)
    try:
        with pytest.raises(DBAPIError, match="prepared statement"):
            _same_query_on_many_connections(db)
    finally:
        db.dispose()


def test_without_them_the_same_statements_run(pooled_postgresql_url):
    db = Database(Settings(database_url=pooled_postgresql_url).sqlalchemy_url, prepared_statements=False)
    try:
        _same_query_on_many_connections(db)
    finally:
        db.dispose()


def test_the_api_through_the_pooler(pooled_postgresql_url, tmp_path):
    settings = Settings(
        database_url=pooled_postgresql_url,
        database_transaction_pooling=True,
        database_threads=2,  # few client connections, each running its statements more than five times
        data_dir=tmp_path,
        serve_worker="off",
    )
    runtime = Runtime.from_settings(settings, clock=FakeClock())
    try:
        with TestClient(create_app(runtime)) as client:
            api = new_app(runtime, client)
            api.product("monthly", "premium")
            assert api.create("jane").status_code == 200
            for number in range(20):
                # GET is read on the event loop's own pool, PATCH and set transaction in threads.
                assert api.get("jane").status_code == 200
                assert api.patch("jane", first_name=f"Jane {number}").status_code == 200
                response = api.set_transaction(
                    "jane",
                    purchase_type="subscription",
                    store="app_store",
                    store_product_id="monthly",
                    store_transaction_id=f"t{number}",
                    store_original_transaction_id="t0",
                    price={"country": "US", "currency": "USD", "value": 4.99},
                    purchased_at=f"2025-01-{number + 1:02d}T00:00:00Z",
                    originally_purchased_at="2025-01-01T00:00:00Z",
                    expires_at=f"2025-02-{number + 1:02d}T00:00:00Z",
                    renew_status=True,
                )
                assert response.status_code == 200, response.text
            profile = api.get("jane").json()["data"]
            assert profile["subscriptions"][0]["store_transaction_id"] == "t19"
            assert profile["total_revenue_usd"] == pytest.approx(20 * 4.99)
    finally:
        runtime.db.dispose()
