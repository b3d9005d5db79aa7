"""The dashboard in a real browser: headless Chromium (Debian's package) driven by
Playwright against `subledger serve`. Screenshots land in tests/screenshots/.

Skipped when Chromium is not installed, except under CI (``CI=true``), where it fails.
"""

import os
import shutil
from pathlib import Path

import httpx
import pytest
from support.apple_signing import AppleChain
from support.clock import wait_until
from support.fake_google import FakeGoogle
from support.metrics import subscription
from support.receiver import Receiver
from support.serving import operator_env, run, run_json, serving, shop

pytestmark = pytest.mark.slow  # a system test: it starts processes (CI runs it with -m slow)

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).parent.parent / "screenshots"
EMAIL = "ops@example.com"
PASSWORD = "correct horse battery"

if not Path(CHROMIUM).exists():
    if os.environ.get("CI") == "true":
        raise RuntimeError("Chromium is missing: .ci/run installs Debian's chromium package")
    pytest.skip("Chromium is not installed (apt-get install chromium)", allow_module_level=True)

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect


@pytest.fixture
def server(tmp_path):
    env = operator_env(tmp_path / "data")
    run(env, "migrate")
    app = shop(env)
    run(env, "operators", "create", "--email", EMAIL, "--password", PASSWORD)
    with serving(env) as base:
        headers = {"Authorization": f"Api-Key {app['secret_api_key']}", "adapty-customer-user-id": "alice"}
        api = f"{base}/api/v2/server-side-api"
        assert httpx.post(f"{api}/profile/", headers=headers, json={"email": "alice@example.com"}).status_code == 200
        body = subscription("t1", "o1", "2025-01-10", "2099-02-10", 9.99, store_product_id="monthly")
        assert httpx.post(f"{api}/purchase/set/transaction/", headers=headers, json=body).status_code == 200
        yield base, app["app_id"], env, headers
    assert run_json(env, "operators", "list")[0]["email"] == EMAIL


@pytest.fixture
def page():
    SCREENSHOTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            # No sandbox as root; no background traffic to Google's hosts on a closed network.
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
        )
        try:
            yield browser.new_page(viewport={"width": 1280, "height": 900})
        finally:
            browser.close()


def test_an_operator_signs_in_sees_charts_searches_and_opens_a_profile(server, page):
    base, app_id, _, _ = server
    page.goto(f"{base}/dashboard/")
    assert "/dashboard/login" in page.url
    page.screenshot(path=SCREENSHOTS / "1-sign-in.png")

    page.fill("input[name=email]", EMAIL)
    page.fill("input[name=password]", "wrong password")
    page.click("button[type=submit]")
    assert page.locator(".error").inner_text() == "Wrong email or password."

    page.fill("input[name=email]", EMAIL)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/dashboard/apps/{app_id}/")
    charts = page.locator("svg.chart")
    assert charts.count() == 6
    first_line = page.locator("svg.chart path.line").first
    assert first_line.get_attribute("d").startswith("M")
    box = charts.first.bounding_box()
    assert box["width"] > 300 and box["height"] > 80  # drawn, with a size, on the page
    assert "Active subscriptions" in page.locator(".tiles").inner_text()
    page.screenshot(path=SCREENSHOTS / "2-overview.png", full_page=True)
    page.select_option("form.filters select[name=store]", "app_store")
    page.click("form.filters button[type=submit]")
    page.wait_for_url("**store=app_store**")
    expect(page.locator("svg.chart")).to_have_count(6)

    page.click("text=Profiles")
    assert "subscribed" in page.locator("table.customers").inner_text()
    page.select_option("form.filters select[name=status]", "churned")
    page.click("form.filters button[type=submit]")
    expect(page.locator("main")).to_contain_text("None of the 1 profiles read matches.")
    page.screenshot(path=SCREENSHOTS / "3a-customers.png", full_page=True)
    page.fill("input[name=q]", "alice")
    page.press("input[name=q]", "Enter")
    page.wait_for_url(f"{base}/dashboard/apps/{app_id}/profiles/*/")
    assert page.locator("h1").inner_text() == "alice"
    assert "premium" in page.locator("table.access-levels").inner_text()
    assert "monthly" in page.locator("table.subscriptions").inner_text()
    assert "subscription_started" in page.locator("ol.timeline").inner_text()
    page.screenshot(path=SCREENSHOTS / "3-profile.png", full_page=True)
    page.fill("input[name=expires_at]", "2099-12-31T23:59")
    page.click("form.grant button[type=submit]")
    assert page.locator(".notice").inner_text() == "Granted premium until 2099-12-31 23:59 UTC."
    assert "active" in page.locator("table.access-levels").inner_text()
    page.screenshot(path=SCREENSHOTS / "3b-profile-granted.png", full_page=True)
    page.click("table.access-levels button:has-text('Revoke now')")
    assert page.locator(".notice").inner_text() == "Revoked premium."

    page.click("text=Catalog")
    assert "monthly" in page.locator("table.products").inner_text()
    page.fill("input[name=access_level_id]", "gold")
    page.click("button:has-text('Add access level')")
    assert "gold" in page.locator("table").first.inner_text()
    page.screenshot(path=SCREENSHOTS / "4-catalog.png", full_page=True)

    page.click("text=Journeys")
    assert "Install" in page.locator("table").first.inner_text()
    page.screenshot(path=SCREENSHOTS / "5-journeys.png", full_page=True)

    page.click("text=Stores")
    assert "Save Paddle" in page.content()
    page.screenshot(path=SCREENSHOTS / "6-stores.png", full_page=True)

    page.click("text=Paywalls")
    assert page.locator("h1").inner_text() == "Paywalls and experiments"
    page.screenshot(path=SCREENSHOTS / "6c-paywalls.png", full_page=True)

    page.click("text=API keys")
    assert "secret" in page.locator("table.keys").inner_text()
    page.locator("form.rotate").nth(1).locator("select[name=grace_hours]").select_option("24")
    page.click("button:has-text('Rotate the public key')")
    assert page.locator("code.key").inner_text().startswith("public_live_")
    page.screenshot(path=SCREENSHOTS / "6d-keys.png", full_page=True)

    page.click("text=Activity")
    trail = page.locator("table.activity").inner_text()
    assert EMAIL in trail and "/grant" in trail and "/revoke" in trail and "/keys/rotate" in trail
    assert "access_level_id=gold" in trail and "kind=public" in trail
    page.screenshot(path=SCREENSHOTS / "6b-activity.png", full_page=True)

    page.click("text=Webhooks")
    assert page.locator("h1").inner_text() == "Webhooks" and "Add an endpoint" in page.content()
    page.screenshot(path=SCREENSHOTS / "6e-webhooks.png", full_page=True)

    # Every page on a desktop and at a phone's width: nothing is wider than the screen but the
    # tables, which scroll; a screenshot of each.
    links = ("Overview", "Journeys", "Profiles", "Paywalls", "Webhooks", "Catalog", "Stores", "API keys", "Activity")
    for width, device in ((1280, "desktop"), (390, "phone")):
        page.set_viewport_size({"width": width, "height": 844})
        pages = [("profile", lambda: page.goto(f"{base}/dashboard/apps/{app_id}/profiles/?q=alice"))]
        pages += [(link, lambda link=link: follow(page, f"header nav >> text={link}")) for link in links]
        pages += [("deliveries", lambda: page.goto(f"{base}/dashboard/apps/{app_id}/deliveries/"))]
        pages += [("sign-in", lambda: follow(page, "text=Sign out") or page.wait_for_url(f"{base}/dashboard/login"))]
        for number, (name, visit) in enumerate(pages):
            visit()
            assert page.evaluate("document.documentElement.scrollWidth") <= width, (name, width)
            slug = name.lower().replace(" ", "-")
            page.screenshot(path=SCREENSHOTS / f"9{number:02d}-{slug}-{device}.png", full_page=True)
        signed_in(page, base, app_id)


def follow(page, selector: str) -> None:
    """Click a link and wait for the page it opens to load: read between the two, the document
    can be none at all."""
    with page.expect_navigation():
        page.click(selector)


def signed_in(page, base: str, app_id: str) -> str:
    """Signs the operator in; the app's pages' base URL."""
    page.goto(f"{base}/dashboard/login")
    page.fill("input[name=email]", EMAIL)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/dashboard/apps/{app_id}/")
    return f"{base}/dashboard/apps/{app_id}"


def test_an_owner_keeps_webhooks_the_catalog_stores_and_refunds_from_the_browser(server, page, tmp_path):
    base, app_id, env, headers = server
    pages = signed_in(page, base, app_id)
    api = f"{base}/api/v2/server-side-api"

    # Webhooks: the endpoint's verification, then the test event; a profile's event refused (404), replayed.
    with Receiver(script=["ok", "ok", "404", "ok"]) as receiver:
        page.click("header nav >> text=Webhooks")
        added = page.locator("form.card").last
        added.locator("input[name=url]").fill(receiver.url)
        added.locator("input[name=event_types][value=profile_created]").check()
        added.locator("button:has-text('Add endpoint')").click()
        expect(page.locator(".notice")).to_contain_text("whsec_")
        assert receiver.received[0]["json"] == {}  # the verification request
        page.screenshot(path=SCREENSHOTS / "8a-webhook-added.png", full_page=True)

        page.click("header nav >> text=Webhooks")
        endpoint = page.locator("details.endpoint")
        endpoint.locator("summary").click()
        endpoint.locator("select[name=event_type]").select_option("trial_started")
        endpoint.locator("button:has-text('Send test event')").click()
        expect(page.locator(".notice")).to_have_text("Test trial_started sent to the production URL: answered 200.")
        assert receiver.received[-1]["json"]["event_type"] == "trial_started"

        bob = {**headers, "adapty-customer-user-id": "bob"}
        assert httpx.post(f"{api}/profile/", headers=bob, json={}).status_code == 200
        wait_until(lambda: len(receiver.received) == 3)  # bob's profile_created, refused
        page.goto(f"{pages}/deliveries/?status=refused")
        wait_until(lambda: page.reload() and page.locator("details.delivery.refused").count() == 1)
        page.click("button:has-text('Replay refused and dead deliveries')")
        expect(page.locator(".notice")).to_contain_text("1 deliveries")
        wait_until(lambda: len(receiver.accepted) == 3)
        assert receiver.accepted[-1]["json"]["customer_user_id"] == "bob"
        page.goto(f"{pages}/deliveries/?status=delivered")
        delivered = page.locator("details.delivery.delivered")  # bob's (the verification and the test are sent at once)
        expect(delivered).to_have_count(1)
        expect(delivered.locator("summary")).to_contain_text("profile_created · delivered · 2 attempt(s)")
        page.screenshot(path=SCREENSHOTS / "8b-deliveries.png", full_page=True)

        page.click("text=Endpoints")
        endpoint.locator("summary").click()
        endpoint.locator("input[name=send_attribution]").check()
        endpoint.locator("button:has-text('Save')").click()
        expect(page.locator(".notice")).to_contain_text("Saved")
        [saved] = httpx.get(f"{base}/api/admin/v1/webhooks/", headers=headers).json()["data"]
        assert saved["send_attribution"] and "profile_created" in saved["event_types"]  # the rest as it was
        endpoint.locator("summary").click()
        page.click("details.endpoint button:has-text('Remove')")
        expect(page.locator("details.endpoint")).to_have_count(0)
    assert run_json(env, "webhooks", "list", "--app", app_id) == []

    # Catalog: a level added and removed, a product with credits in a new currency, removed.
    page.click("header nav >> text=Catalog")
    page.fill("input[name=access_level_id]", "gold")
    page.click("button:has-text('Add access level')")
    page.click("table.levels tr:has-text('gold') button:has-text('Remove')")
    expect(page.locator("table.levels")).not_to_contain_text("gold")
    page.click("button:has-text('Turn them on')")
    page.fill("input[name=code]", "COINS")
    page.fill("input[name=name]", "Gold Coins")
    page.click("button:has-text('Add currency')")
    expect(page.locator("table.currencies")).to_contain_text("Gold Coins")
    product = page.locator("form:has(button:has-text('Add product'))")
    product.locator("select[name=store]").select_option("play_store")
    product.locator("input[name=store_product_id]").fill("coins_100")
    product.locator("input[name=period]").fill("monthly")  # no period: refused, the form kept as typed
    product.locator("input[name=is_consumable]").check()
    product.locator("button").click()
    expect(page.locator(".error")).to_contain_text("Period must be an ISO 8601 duration")
    assert product.locator("input[name=store_product_id]").input_value() == "coins_100"
    assert product.locator("input[name=is_consumable]").is_checked()
    product.locator("input[name=period]").fill("lifetime")
    product.locator("button").click()
    row = page.locator("table.products tr:has-text('coins_100')")
    row.locator("input[name=credits]").fill("COINS=100")
    row.locator("button:has-text('Set')").click()
    expect(page.locator("table.products tr:has-text('coins_100') input[name=credits]")).to_have_value("COINS=100")
    page.screenshot(path=SCREENSHOTS / "8c-catalog-changed.png", full_page=True)
    products = httpx.get(f"{base}/api/admin/v1/products/", headers=headers).json()["data"]
    assert {p["store_product_id"] for p in products} == {"monthly", "coins_100"}
    page.click("table.products tr:has-text('coins_100') button:has-text('Remove')")
    expect(page.locator("table.products")).not_to_contain_text("coins_100")
    page.click("table.currencies tr:has-text('COINS') button:has-text('Remove')")
    expect(page.locator("table.currencies")).to_contain_text("None yet.")
    page.fill("textarea[name=origins]", "https://pay.example.com")
    page.click("button:has-text('Save origins')")
    page.reload()
    expect(page.locator("textarea[name=origins]")).to_have_value("https://pay.example.com")

    # Stores: the App Store with Apple's root certificate file, Play with its key, Stripe; each
    # one's secrets shown as set, never their values.
    page.click("header nav >> text=Stores")
    root = tmp_path / "AppleRootCA-G3.cer"
    root.write_bytes(AppleChain().root_der)
    apple = page.locator("form:has(button:has-text('Save App Store'))")
    apple.locator("input[name=bundle_id]").fill("com.example.shop")
    apple.locator("input[name=root_certificates]").set_input_files(root)
    apple.locator("button").click()
    expect(page.locator(".notice")).to_have_text("App Store saved.")
    play = page.locator("form:has(button:has-text('Save Google Play'))")
    play.locator("input[name=package_name]").fill("com.example.shop")
    with FakeGoogle() as google:
        play.locator("textarea[name=service_account]").fill(google.service_account())
    play.locator("button").click()
    expect(page.locator("code.push-path")).to_contain_text(f"/stores/play-store/{app_id}/notifications/?token=")
    assert "PRIVATE KEY" not in page.content()
    stripe = page.locator("form:has(button:has-text('Save Stripe'))")
    stripe.locator("input[name=secret_key]").fill("sk_test_browser")
    stripe.locator("input[name=webhook_secret]").fill("whsec_browser")
    stripe.locator("select[name=profile_source]").select_option("email")
    stripe.locator("button").click()
    expect(page.locator(".notice")).to_have_text("Stripe saved.")
    paddle = page.locator("form:has(button:has-text('Save Paddle'))")
    paddle.locator("input[name=api_key]").fill("pdl_sdbx_apikey_browser")
    paddle.locator("input[name=sandbox]").check()
    paddle.locator("button").click()
    expect(page.locator(".notice")).to_have_text("Paddle saved.")
    assert "sandbox: True" in page.locator("table tr:has-text('paddle')").first.inner_text()
    connected = page.locator("table tr:has-text('stripe')").first.inner_text()
    assert (
        "profile_source: email" in connected and "secret_key" in connected and "sk_test_browser" not in page.content()
    )

    # A refund recorded from alice's page ends her premium and refunds its transaction.
    page.click("header nav >> text=Profiles")
    page.fill("input[name=q]", "alice")
    page.press("input[name=q]", "Enter")
    page.click("button:has-text('Revoke and record a refund')")
    expect(page.locator(".notice")).to_contain_text("Revoked premium and recorded")
    expect(page.locator("ol.timeline")).to_contain_text("subscription_refunded")
    alice = httpx.get(f"{api}/profile/", headers=headers).json()["data"]
    assert alice["subscriptions"][0]["refunded_at"] is not None
    assert alice["access_levels"][0]["expires_at"] == alice["subscriptions"][0]["refunded_at"]
    page.screenshot(path=SCREENSHOTS / "8d-refunded.png", full_page=True)

    page.click("text=Activity")
    trail = page.locator("table.activity").inner_text()
    for path in ("/webhooks/", "/deliveries/replay", "/catalog/currencies/", "/stores/app_store/", "/stores/stripe/",
                 "/refund"):  # fmt: skip
        assert path in trail, path
