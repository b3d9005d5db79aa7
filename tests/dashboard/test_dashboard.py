"""The dashboard through HTTP: sign-in, sessions, CSRF, search, pages and catalog forms."""

import re
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from support.api import another_server_process
from support.dashboard import EMAIL, PASSWORD, login_csrf, sign_in
from support.events import drain
from support.metrics import subscription
from support.receiver import Receiver

from subledger.core.tables import sign_in_buckets
from subledger.dashboard import service as dashboard_service
from subledger.purchases import repricing


@pytest.fixture
def shop(api, runtime, clock):
    dashboard_service.create_operator(runtime, EMAIL, PASSWORD)
    api.product("monthly", "premium", "P1M")
    api.create("alice", email="alice@example.com", ip_v4_address="203.0.113.7", att_status=2)
    clock.current = clock.current.replace(day=20)
    assert api.set_transaction("alice", **subscription("t1", "o1", "2025-01-10", "2025-02-10", 9.99)).status_code == 200
    return api


def page_csrf(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def test_every_page_needs_a_signed_in_operator(shop, client):
    for path in ("/dashboard/", f"/dashboard/apps/{shop.app_id}/", f"/dashboard/apps/{shop.app_id}/catalog/"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"].startswith("/dashboard/login?next=")
    client.cookies.set("subledger_session", "made-up", path="/dashboard")
    forged = client.get("/dashboard/", follow_redirects=False)
    assert forged.status_code == 303


def test_sign_in_sets_a_strict_http_only_cookie_and_goes_where_asked(shop, client):
    wrong = sign_in(client, password="wrong password!")
    assert wrong.status_code == 303 and "failed=1" in wrong.headers["location"]
    unknown = sign_in(client, email="nobody@example.com")
    assert "failed=1" in unknown.headers["location"]
    response = sign_in(client, next_page=f"/dashboard/apps/{shop.app_id}/catalog/")
    assert response.status_code == 303 and response.headers["location"] == f"/dashboard/apps/{shop.app_id}/catalog/"
    cookie = response.headers["set-cookie"]
    assert "subledger_session=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert client.get(response.headers["location"]).status_code == 200


def test_sign_in_refuses_a_missing_csrf_token_and_foreign_redirects(shop, client):
    login_csrf(client)
    no_token = client.post("/dashboard/login", data={"email": EMAIL, "password": PASSWORD}, follow_redirects=False)
    assert no_token.status_code == 403
    for target in ("https://evil.example/", "//evil.example/", "/api/v2/server-side-api/profile/"):
        assert sign_in(client, next_page=target).headers["location"] == "/dashboard/"


def test_an_email_no_database_can_look_up_is_a_400(shop, client):
    response = sign_in(client, email="ops\x00@example.com")
    assert response.status_code == 400 and response.json()["errors"][0]["source"] == "email"


def test_overview_shows_metrics_and_charts(shop, client):
    sign_in(client)
    page = client.get(f"/dashboard/apps/{shop.app_id}/?period=day&start=2025-01-08&end=2025-01-20")
    assert page.status_code == 200
    assert page.text.count('<svg class="chart"') == 6 and '<path class="line" d="M' in page.text
    assert "MRR" in page.text and "$9.99" in page.text
    assert "<title>01-10: $9.99</title>" in page.text  # each point's exact value, shown on hover
    assert "no earlier figure" in page.text  # nothing was sold in the 13 days before
    later = client.get(f"/dashboard/apps/{shop.app_id}/?period=day&start=2025-01-14&end=2025-01-19").text
    assert "+0.0% on the days before" in later  # MRR held at $9.99
    assert "-100.0% on the days before" in later  # net revenue: $9.99 in the window before, none since
    other_store = client.get(f"/dashboard/apps/{shop.app_id}/?start=2025-01-08&end=2025-01-20&store=play_store")
    assert other_store.status_code == 200 and "$9.99" not in other_store.text
    in_us = client.get(f"/dashboard/apps/{shop.app_id}/?start=2025-01-08&end=2025-01-20&country=us&product=monthly")
    assert "$9.99" in in_us.text
    assert client.get(f"/dashboard/apps/{shop.app_id}/?period=year").status_code == 400
    assert client.get(f"/dashboard/apps/{uuid.uuid4()}/").status_code == 404


def test_overview_says_when_the_metrics_are_being_recomputed(shop, client, runtime, monkeypatch):
    """New exchange rates applied while the servers serve: the page says so, in the dashboard's own words."""
    sign_in(client)
    monkeypatch.setattr(repricing, "REPRICING_PAGE", 1)

    def look(done: int) -> None:
        page = client.get(f"/dashboard/apps/{shop.app_id}/")
        pages.append((page.status_code, "New exchange rates are being applied" in page.text, page.text.count("<svg")))

    pages = []
    repricing.load_rates(runtime, "currency,usd_per_unit,as_of\nEUR,3,2025-06-01\n", look)
    assert pages == [(503, True, 0)]
    after = client.get(f"/dashboard/apps/{shop.app_id}/")
    assert after.status_code == 200 and after.text.count('<svg class="chart"') == 6


def test_search_finds_a_profile_by_any_of_its_ids(shop, client):
    sign_in(client)
    profile_id = shop.get("alice").json()["data"]["profile_id"]
    for q in ("alice", profile_id, "t1", "o1"):
        found = client.get(f"/dashboard/apps/{shop.app_id}/profiles/?q={q}", follow_redirects=False)
        assert found.status_code == 303, q
        assert found.headers["location"] == f"/dashboard/apps/{shop.app_id}/profiles/{profile_id}/"
    nothing = client.get(f"/dashboard/apps/{shop.app_id}/profiles/?q=nobody")
    assert nothing.status_code == 200 and "Nothing matches" in nothing.text
    page = client.get(f"/dashboard/apps/{shop.app_id}/profiles/{profile_id}/")
    assert page.status_code == 200
    assert "premium" in page.text and "subscription_started" in page.text and "t1" in page.text
    assert "alice@example.com" in page.text and "203.0.113.7" in page.text


def test_catalog_forms_need_the_sessions_csrf_token(shop, client):
    sign_in(client)
    catalog = f"/dashboard/apps/{shop.app_id}/catalog/"
    csrf = page_csrf(client.get(catalog).text)
    body = {"store": "play_store", "store_product_id": "yearly", "period": "P1Y", "access_level_id": "premium"}
    assert client.post(catalog + "products/", data=body, follow_redirects=False).status_code == 403
    assert client.post(catalog + "products/", data={**body, "csrf": "guess"}, follow_redirects=False).status_code == 403
    added = client.post(catalog + "products/", data={**body, "csrf": csrf}, follow_redirects=False)
    assert added.status_code == 303 and added.headers["location"] == catalog
    products = {p["store_product_id"]: p for p in shop.admin("GET", "/products/").json()["data"]}
    assert products["yearly"]["period"] == "P1Y"
    bad = client.post(catalog + "products/", data={**body, "period": "sometimes", "csrf": csrf}, follow_redirects=False)
    assert "error=" in bad.headers["location"]
    # The form comes back as it was typed, with the level chosen from the app's levels.
    again = client.get(bad.headers["location"]).text
    assert 'value="sometimes"' in again and "<option selected>play_store</option>" in again
    assert "<option selected>premium</option>" in again and "<option>paddle</option>" in again
    level = client.post(
        catalog + "access-levels/", data={"access_level_id": "gold", "csrf": csrf}, follow_redirects=False
    )
    assert level.status_code == 303
    assert "gold" in [row["access_level_id"] for row in shop.admin("GET", "/access-levels/").json()["data"]]
    gone = client.post(catalog + "access-levels/gold/delete", data={"csrf": csrf}, follow_redirects=False)
    assert gone.status_code == 303 and gone.headers["location"] == catalog
    default = client.post(catalog + "access-levels/premium/delete", data={"csrf": csrf}, follow_redirects=False)
    assert "error=" in default.headers["location"] and "it stays" in client.get(default.headers["location"]).text
    levels = [row["access_level_id"] for row in shop.admin("GET", "/access-levels/").json()["data"]]
    assert "gold" not in levels and "premium" in levels
    removed = client.post(f"{catalog}products/{products['yearly']['product_id']}/delete", data={"csrf": csrf})
    assert removed.status_code == 200
    assert "yearly" not in [p["store_product_id"] for p in shop.admin("GET", "/products/").json()["data"]]


def test_deliveries_page_and_sign_out(shop, client):
    sign_in(client)
    deliveries = client.get(f"/dashboard/apps/{shop.app_id}/deliveries/")
    assert deliveries.status_code == 200 and "Webhook deliveries" in deliveries.text
    csrf = page_csrf(deliveries.text)
    out = client.post("/dashboard/logout", data={"csrf": csrf}, follow_redirects=False)
    assert out.status_code == 303
    assert client.get("/dashboard/", follow_redirects=False).status_code == 303


def test_operators_need_an_email_the_table_can_hold(runtime):
    with pytest.raises(ValueError, match="1 to 255 characters"):
        dashboard_service.create_operator(runtime, "e" * 250 + "@x.com", PASSWORD)
    assert dashboard_service.list_operators(runtime) == []


def test_operators_need_a_long_password(runtime):
    with pytest.raises(ValueError):
        dashboard_service.create_operator(runtime, "x@example.com", "short")
    dashboard_service.create_operator(runtime, "x@example.com", "long enough password")
    with pytest.raises(dashboard_service.OperatorExists):
        dashboard_service.create_operator(runtime, "X@example.com ", "long enough password")


def test_repeated_failed_sign_ins_are_throttled(shop, client, clock):
    for _ in range(5):
        assert "failed=1" in sign_in(client, password="wrong password!").headers["location"]
    locked = sign_in(client)  # the right password, too late
    assert locked.status_code == 429 and locked.headers["Retry-After"] == "180"
    assert locked.json()["error_code"] == "rate_limited"
    clock.advance(minutes=3)
    assert "failed=1" in sign_in(client, password="wrong password!").headers["location"]
    assert sign_in(client).status_code == 429
    clock.advance(minutes=15)
    assert sign_in(client).headers["location"] == "/dashboard/"


def test_a_sign_in_fills_the_bucket_again_and_other_addresses_have_their_own(shop, client):
    for _ in range(4):
        sign_in(client, password="wrong password!")
    assert sign_in(client).headers["location"] == "/dashboard/"
    for _ in range(5):
        assert "failed=1" in sign_in(client, password="wrong password!").headers["location"]
    assert sign_in(client).status_code == 429
    elsewhere = TestClient(client.app, client=("203.0.113.9", 50000))  # the same server, started already
    assert sign_in(elsewhere).headers["location"] == "/dashboard/"


def test_server_processes_share_the_sign_in_limit(shop, client, runtime):
    with another_server_process(runtime) as other:
        statuses = [sign_in(either, password="wrong password!").status_code for either in [client, other] * 3]
        assert statuses == [303] * 5 + [429]
        assert sign_in(other).status_code == 429


def test_sign_ins_at_once_cannot_pass_the_limit_before_they_fail(shop, runtime):
    def attempt(_n):
        try:
            dashboard_service.take_attempt(runtime, EMAIL, "203.0.113.9")
        except dashboard_service.TooManySignIns:
            return "refused"
        return "taken"

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(attempt, range(8)))
    assert sorted(outcomes) == ["refused"] * 3 + ["taken"] * 5


def test_buckets_full_again_are_deleted(shop, client, clock, runtime):
    sign_in(client, password="wrong password!")
    clock.advance(minutes=3)
    sign_in(client, email="someone@example.com", password="wrong password!")
    with runtime.db.read() as conn:
        # The first email's bucket, full again, goes; the address's and the second email's hold attempt two.
        assert sorted(row.email for row in conn.execute(select(sign_in_buckets))) == ["", "someone@example.com"]


def test_web_api_origins_are_edited_on_the_catalog_page(shop, client):
    sign_in(client)
    catalog = f"/dashboard/apps/{shop.app_id}/catalog/"
    csrf = page_csrf(client.get(catalog).text)
    form = catalog + "web-origins/"
    body = {"origins": "https://Pay.Example\nhttp://localhost:8080\n"}
    assert client.post(form, data=body, follow_redirects=False).status_code == 403
    saved = client.post(form, data={**body, "csrf": csrf}, follow_redirects=False)
    assert saved.status_code == 303 and saved.headers["location"] == catalog
    listed = ["http://localhost:8080", "https://pay.example"]
    assert shop.admin("GET", "/web-api/origins/").json()["data"]["origins"] == listed
    assert "https://pay.example" in client.get(catalog).text
    refused = client.post(form, data={"origins": "https://pay.example/checkout", "csrf": csrf}, follow_redirects=False)
    assert "error=" in refused.headers["location"] and "is%20not%20an%20origin" in refused.headers["location"]
    assert shop.admin("GET", "/web-api/origins/").json()["data"]["origins"] == listed
    cleared = client.post(form, data={"origins": "", "csrf": csrf}, follow_redirects=False)
    assert cleared.status_code == 303
    assert shop.admin("GET", "/web-api/origins/").json()["data"]["origins"] == []


def test_webhook_endpoints_are_added_edited_tested_and_removed(shop, client, runtime, clock):
    sign_in(client)
    page = f"/dashboard/apps/{shop.app_id}/webhooks/"
    csrf = page_csrf(client.get(page).text)
    # The verification, the one after the edit (its authorization given again), the test; then 404.
    with Receiver(script=["ok", "ok", "ok", "404"]) as receiver:
        form = {
            "url": receiver.url,
            "authorization": "Bearer dash",
            "event_types": ["profile_created", "trial_started"],
            "event_names": "profile_created=hello\n",
            "send_user_attributes": "true",
        }
        assert client.post(page, data=form, follow_redirects=False).status_code == 403  # no CSRF token
        added = client.post(page, data={**form, "csrf": csrf}, follow_redirects=False)
        assert added.status_code == 200 and "whsec_" in added.text  # the secret, on the answer alone
        [endpoint] = shop.admin("GET", "/webhooks/").json()["data"]
        assert endpoint["event_types"] == ["profile_created", "trial_started"]
        assert endpoint["event_names"] == {"profile_created": "hello"} and endpoint["has_authorization"]
        assert endpoint["send_user_attributes"] and not endpoint["send_attribution"]  # unchecked: off
        edit = f"{page}{endpoint['endpoint_id']}/"
        changed = client.post(edit, data={**form, "csrf": csrf, "send_attribution": "true"}, follow_redirects=False)
        assert changed.status_code == 303 and "notice=Saved" in changed.headers["location"]
        assert shop.admin("GET", f"/webhooks/{endpoint['endpoint_id']}/").json()["data"]["send_attribution"]
        tested = client.post(edit + "test", data={"csrf": csrf, "event_type": "trial_started"}, follow_redirects=False)
        assert "answered%20200" in tested.headers["location"]
        assert receiver.received[-1]["json"]["event_type"] == "trial_started"
        shop.create("u")
        drain(runtime, clock)  # the receiver refuses it: 404
    deliveries = f"/dashboard/apps/{shop.app_id}/deliveries/"
    assert "refused" in client.get(deliveries + "?status=refused").text
    replayed = client.post(deliveries + "replay", data={"csrf": csrf}, follow_redirects=False)
    assert "1%20deliveries" in replayed.headers["location"]
    removed = client.post(edit + "delete", data={"csrf": csrf}, follow_redirects=False)
    assert removed.status_code == 303 and shop.admin("GET", "/webhooks/").json()["data"] == []


def test_a_webhook_form_the_api_refuses_shows_why(shop, client, runtime):
    sign_in(client)
    page = f"/dashboard/apps/{shop.app_id}/webhooks/"
    csrf = page_csrf(client.get(page).text)
    refused = client.post(page, data={"csrf": csrf, "event_types": ["profile_created"]}, follow_redirects=False)
    assert refused.status_code == 303 and "error=" in refused.headers["location"]
    assert "url" in client.get(refused.headers["location"]).text.lower()
    assert shop.admin("GET", "/webhooks/").json()["data"] == []


def test_virtual_currencies_are_kept_on_the_catalog_page_and_balances_shown_on_the_profile(shop, client):
    sign_in(client)
    catalog = f"/dashboard/apps/{shop.app_id}/catalog/"
    page = client.get(catalog)
    assert "<title>Catalog · subledger</title>" in page.text and "are <strong>off</strong>" in page.text
    csrf = page_csrf(page.text)
    assert (
        client.post(catalog + "currencies/switch", data={"enabled": "true"}, follow_redirects=False).status_code == 403
    )
    switched = client.post(
        catalog + "currencies/switch", data={"enabled": "true", "csrf": csrf}, follow_redirects=False
    )
    assert switched.status_code == 303 and switched.headers["location"] == catalog
    added = client.post(catalog + "currencies/", data={"code": "COINS", "name": "Gold Coins", "csrf": csrf})
    assert "are <strong>on</strong>" in added.text and "Gold Coins" in added.text
    bad = client.post(
        catalog + "currencies/", data={"code": "no-dash", "name": "x", "csrf": csrf}, follow_redirects=False
    )
    assert "error=" in bad.headers["location"]

    monthly = shop.admin("GET", "/products/").json()["data"][0]["product_id"]
    credits = f"{catalog}products/{monthly}/credits"
    refused = client.post(credits, data={"credits": "COINS=lots", "csrf": csrf}, follow_redirects=False)
    assert "error=" in refused.headers["location"]
    assert client.post(credits, data={"credits": "COINS=25", "csrf": csrf}).status_code == 200
    assert 'value="COINS=25"' in client.get(catalog).text
    renewal = subscription("t2", "o1", "2025-02-10", "2025-03-10", 9.99)
    assert shop.set_transaction("alice", **renewal).status_code == 200

    credit = {"items": [{"currency_code": "COINS", "amount": 5}], "metadata": {"reason": "promo"}}
    assert shop.request("POST", "/vc/transactions/", "alice", json=credit).status_code == 200
    alice = shop.get("alice").json()["data"]["profile_id"]
    profile = client.get(f"/dashboard/apps/{shop.app_id}/profiles/{alice}/").text
    assert "<td>30</td>" in profile  # 25 from the renewal, 5 from the API
    assert "subscription_renewal" in profile and "+5 COINS → 30" in profile and "reason=promo" in profile
    used = client.post(f"{catalog}currencies/COINS/delete", data={"csrf": csrf}, follow_redirects=False)
    assert "error=" in used.headers["location"]


def test_stores_are_connected_from_the_dashboard(shop, client):
    stores = f"/dashboard/apps/{shop.app_id}/stores/"
    assert client.get(stores, follow_redirects=False).status_code == 303  # signed in only
    sign_in(client)
    page = client.get(stores)
    assert page.status_code == 200 and "No store connected yet" in page.text
    csrf = page_csrf(page.text)
    paddle = {"api_key": "pdl_live_apikey_1", "notification_secret": "pdl_ntfset_1", "sandbox": "true"}
    assert client.post(stores + "paddle/", data=paddle, follow_redirects=False).status_code == 403  # no CSRF token
    saved = client.post(stores + "paddle/", data={**paddle, "csrf": csrf}, follow_redirects=False)
    assert saved.status_code == 303 and "notice=Paddle" in saved.headers["location"]
    stripe = {"secret_key": "sk_live_1", "profile_source": "client_reference_id", "csrf": csrf}
    assert client.post(stores + "stripe/", data=stripe, follow_redirects=False).status_code == 303
    # A blank secret keeps the one set; an unticked box turns the setting off.
    assert client.post(stores + "paddle/", data={"csrf": csrf}, follow_redirects=False).status_code == 303
    connected = {row["store"]: row for row in shop.admin("GET", "/stores/").json()["data"]}
    assert connected["paddle"]["secrets"] == ["api_key", "notification_secret"]
    assert connected["paddle"]["settings"] == {"sandbox": False, "match_email": False}
    assert connected["stripe"]["settings"] == {"profile_source": "client_reference_id"}
    listed = client.get(stores).text
    assert "sk_live_1" not in listed and "pdl_live_apikey_1" not in listed and "client_reference_id" in listed
    refused = client.post(stores + "stripe/", data={"profile_source": "phone", "csrf": csrf}, follow_redirects=False)
    assert "error=" in refused.headers["location"]


def test_journeys_show_the_funnel_conversion_retention_and_ltv(shop, client):
    sign_in(client)
    journeys = f"/dashboard/apps/{shop.app_id}/journeys/"
    page = client.get(journeys + "?start=2025-01-01&end=2025-01-31")
    assert page.status_code == 200
    text = re.sub(r"\s+", " ", page.text)
    assert "<tr><td>Install</td><td>1</td><td>100.0%</td>" in text
    assert "<tr><td>Paid</td><td>1</td><td>100.0%</td>" in text
    assert "<tr><td>Conversion rate from Install to Paid</td><td>1</td><td>1</td><td>100.0%</td></tr>" in text
    assert "1 paying users, $9.99 each so far." in text
    assert client.get(journeys).status_code == 200  # the last 90 days
    backwards = client.get(journeys + "?start=2025-02-01&end=2025-01-01")
    assert backwards.status_code == 200 and 'class="error"' in backwards.text
