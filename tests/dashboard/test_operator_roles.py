"""Operator roles, checked on every form an app's pages post, and the trail of what operators did."""

import re
import uuid
from typing import Literal, get_args, get_origin

import pytest
from fastapi.routing import APIRoute
from support.api import new_app
from support.dashboard import EMAIL, PASSWORD, sign_in
from support.database import db_snapshot

from subledger.core.tables import operator_actions
from subledger.dashboard import service as dashboard_service
from subledger.dashboard.endpoints import router as dashboard_routes

ANALYST = "analyst@example.com"
# A value for each path parameter of the dashboard's forms.
PATH_VALUES = {"endpoint_id": str(uuid.uuid4()), "product_id": str(uuid.uuid4()), "profile_id": str(uuid.uuid4())}
PATH_VALUES |= {"access_level_id": "premium"}
PATH_VALUES |= {"code": "COINS", "store": "stripe"}


@pytest.fixture
def shop(api, runtime):
    dashboard_service.create_operator(runtime, EMAIL, PASSWORD)
    dashboard_service.create_operator(runtime, ANALYST, PASSWORD, role="analyst")
    api.product("monthly", "premium", "P1M")
    return api


def _value(annotation: object) -> str:
    """A value a form field of this type takes."""
    if annotation is bool:
        return "true"
    if annotation is int:
        return "0"
    if get_origin(annotation) is Literal:
        return str(get_args(annotation)[0])
    return "x"


def forms(app_id: str) -> list[tuple[str, dict[str, str]]]:
    """Every form of an app's dashboard pages: its path, and a value for each of its fields."""
    found = []
    for route in dashboard_routes.routes:
        if isinstance(route, APIRoute) and "POST" in route.methods and "{app_id}" in route.path:
            values = {"app_id": app_id, **PATH_VALUES}
            fields = {param.alias: _value(param.field_info.annotation) for param in route.dependant.body_params}
            found.append((route.path.format(**values), fields))
    return found


def csrf_of(client, app_id: str) -> str:
    page = client.get(f"/dashboard/apps/{app_id}/catalog/")
    return re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)


def trail(runtime) -> list[dict]:
    with runtime.db.read() as conn:
        return [dict(row._mapping) for row in conn.execute(operator_actions.select().order_by(operator_actions.c.id))]


def test_an_analyst_sees_every_page_and_every_form_is_refused_and_changes_nothing(shop, client, runtime):
    assert sign_in(client, email=ANALYST).status_code == 303
    for page in ("", "catalog/", "webhooks/", "stores/", "activity/", "journeys/"):
        answer = client.get(f"/dashboard/apps/{shop.app_id}/{page}")
        assert answer.status_code == 200 and "(analyst: read-only)" in answer.text
    csrf = csrf_of(client, shop.app_id)
    every = forms(shop.app_id)
    assert len(every) >= 15  # catalog, currencies, web origins, webhooks, deliveries, stores
    before = {name: rows for name, rows in db_snapshot(runtime).items() if name != "operator_actions"}
    for path, fields in every:
        answer = client.post(path, data={**fields, "csrf": csrf}, follow_redirects=False)
        assert answer.status_code == 403, (path, answer.text)
        assert answer.json()["errors"][0]["errors"] == [
            "Your role (analyst) may see every page and change nothing: ask an owner."
        ]
    after = {name: rows for name, rows in db_snapshot(runtime).items() if name != "operator_actions"}
    assert after == before
    recorded = trail(runtime)
    assert [(row["operator_email"], row["path"], row["status"]) for row in recorded] == [
        (ANALYST, path, 403) for path, _ in every
    ]


def test_an_owners_forms_are_recorded_without_tokens_or_secrets(shop, client, runtime, clock):
    sign_in(client)
    csrf = csrf_of(client, shop.app_id)
    product = {"store": "app_store", "store_product_id": "annual", "period": "P1Y", "csrf": csrf}
    added = client.post(f"/dashboard/apps/{shop.app_id}/catalog/products/", data=product, follow_redirects=False)
    assert added.status_code == 303
    stripe = {"secret_key": "sk_test_123", "webhook_secret": "whsec_456", "profile_source": "email", "csrf": csrf}
    client.post(f"/dashboard/apps/{shop.app_id}/stores/stripe/", data=stripe, follow_redirects=False)
    refused = client.post(f"/dashboard/apps/{shop.app_id}/catalog/access-levels/", data={"access_level_id": "x"})
    assert refused.status_code == 403  # no CSRF token: refused before anything, and not an action

    first, second = trail(runtime)
    assert (first["operator_email"], first["action"], first["status"]) == (
        EMAIL,
        "POST /apps/{app_id}/catalog/products/",
        303,
    )
    assert first["details"] == {"store": "app_store", "store_product_id": "annual", "period": "P1Y"}
    assert first["at"] == clock.now() and str(first["app_id"]) == shop.app_id
    assert second["action"] == "POST /apps/{app_id}/stores/{store}/"
    assert second["details"] == {"profile_source": "email"}  # the key and the secret are not kept

    page = client.get(f"/dashboard/apps/{shop.app_id}/activity/")
    assert page.status_code == 200
    assert page.text.index("<code>/stores/stripe/</code>") < page.text.index("store_product_id=annual")
    assert "sk_test_123" not in page.text and "whsec_456" not in page.text


def test_the_trail_is_the_apps_own(shop, client, runtime):
    sign_in(client)
    csrf = csrf_of(client, shop.app_id)
    client.post(f"/dashboard/apps/{shop.app_id}/catalog/access-levels/", data={"access_level_id": "gold", "csrf": csrf})
    second = new_app(runtime, client, "Second")
    assert dashboard_service.actions(runtime, uuid.UUID(second.app_id)) == []
    assert len(dashboard_service.actions(runtime, uuid.UUID(shop.app_id))) == 1
    assert "gold" not in client.get(f"/dashboard/apps/{second.app_id}/activity/").text


def test_a_role_changed_holds_from_the_next_form(shop, client, runtime):
    sign_in(client)
    csrf = csrf_of(client, shop.app_id)
    level = {"access_level_id": "gold", "csrf": csrf}
    assert client.post(f"/dashboard/apps/{shop.app_id}/catalog/access-levels/", data=level).status_code == 200
    assert dashboard_service.set_role(runtime, EMAIL.upper(), "analyst")
    level = {"access_level_id": "silver", "csrf": csrf}
    assert client.post(f"/dashboard/apps/{shop.app_id}/catalog/access-levels/", data=level).status_code == 403
    assert [row["role"] for row in dashboard_service.list_operators(runtime)] == ["analyst", "analyst"]
    assert not dashboard_service.set_role(runtime, "nobody@example.com", "owner")


def test_roles_are_owner_or_analyst(runtime):
    with pytest.raises(ValueError, match="a role is one of owner, analyst"):
        dashboard_service.create_operator(runtime, "boss@example.com", PASSWORD, role="admin")
    with pytest.raises(ValueError, match="a role is one of"):
        dashboard_service.set_role(runtime, EMAIL, "admin")
    assert dashboard_service.list_operators(runtime) == []
