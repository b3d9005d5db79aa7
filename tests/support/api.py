"""The test client of an app, and a second server process."""

from collections.abc import Iterator
from contextlib import contextmanager

from fastapi.testclient import TestClient

from subledger.app import create_app
from subledger.apps import service as apps_service
from subledger.core.runtime import Runtime
from support.database import database_for

BASE = "/api/v2/server-side-api"


@contextmanager
def another_server_process(runtime: Runtime) -> Iterator[TestClient]:
    """A client of a second server process on the same database (and clock): its own
    engine, and everything it keeps in memory its own."""
    db = database_for(runtime.settings)
    try:
        with TestClient(create_app(Runtime(settings=runtime.settings, db=db, clock=runtime.clock))) as client:
            yield client
    finally:
        db.dispose()


class Api:
    """A client for one app: sends its key and addresses profiles by customer_user_id."""

    def __init__(self, client: TestClient, secret: str, app_id: str, public: str | None = None):
        self.client = client
        self.secret = secret
        self.app_id = app_id
        self.public = public  # the app's public key, for the Web API

    def headers(self, customer_user_id: str | None = None, **extra) -> dict[str, str]:
        headers = {"Authorization": f"Api-Key {self.secret}"}
        if customer_user_id is not None:
            headers["adapty-customer-user-id"] = customer_user_id
        headers.update(extra)
        return headers

    def request(self, method: str, path: str, customer_user_id: str | None = None, json=None, headers=None, **kw):
        return self.client.request(
            method, BASE + path, json=json, headers={**self.headers(customer_user_id), **(headers or {})}, **kw
        )

    def create(self, customer_user_id: str, **fields):
        return self.request("POST", "/profile/", customer_user_id, json=fields)

    def get(self, customer_user_id: str | None = None, **kw):
        return self.request("GET", "/profile/", customer_user_id, **kw)

    def patch(self, customer_user_id: str, **fields):
        return self.request("PATCH", "/profile/", customer_user_id, json=fields)

    def delete(self, customer_user_id: str):
        return self.request("DELETE", "/profile/", customer_user_id)

    def set_transaction(self, customer_user_id: str, **transaction):
        return self.request("POST", "/purchase/set/transaction/", customer_user_id, json=transaction)

    def grant(self, customer_user_id: str, **body):
        return self.request("POST", "/purchase/profile/grant/access-level/", customer_user_id, json=body)

    def revoke(self, customer_user_id: str, **body):
        return self.request("POST", "/purchase/profile/revoke/access-level/", customer_user_id, json=body)

    def admin(self, method: str, path: str, json=None):
        return self.client.request(method, "/api/admin/v1" + path, json=json, headers=self.headers())

    def access_level(self, level_id: str) -> None:
        assert self.admin("POST", "/access-levels/", {"access_level_id": level_id}).status_code == 201

    def product(
        self, store_product_id: str, access_level_id: str | None, period: str = "P1M", store: str = "app_store", **extra
    ) -> dict:
        body = {
            "store": store,
            "store_product_id": store_product_id,
            "access_level_id": access_level_id,
            "period": period,
            **extra,
        }
        response = self.admin("POST", "/products/", body)
        assert response.status_code == 201, response.text
        return response.json()["data"]


def new_app(runtime: Runtime, client: TestClient, name: str = "Test App") -> Api:
    created = apps_service.create_app(runtime.db, name, runtime.clock.now())
    return Api(client, created["secret_api_key"], created["app_id"], created["public_api_key"])
