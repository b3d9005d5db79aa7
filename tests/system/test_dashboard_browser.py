"""The dashboard in a real browser: headless Chromium (Debian's package) driven by
Playwright against `subledger serve`. Screenshots land in tests/screenshots/.

Skipped when Chromium is not installed, except under CI (``CI=true``), where it fails.
"""

import os
import shutil
from pathlib import Path

import httpx
import pytest
from support.metrics import subscription
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
        yield base, app["app_id"]
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
    base, app_id = server
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

    page.click("text=Profiles")
    assert "subscribed" in page.locator("table.customers").inner_text()
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

    # On a desktop and at a phone's width nothing on any page is wider than the screen but the
    # tables, which scroll.
    pages = ("Overview", "Journeys", "Profiles", "Paywalls", "Webhooks", "Catalog", "Stores", "API keys", "Activity")
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 844})
        for number, link in enumerate(pages):
            page.click(f"header nav >> text={link}")
            assert page.evaluate("document.documentElement.scrollWidth") <= width, (link, width)
            if width == 390:
                name = f"7{number}-{link.lower().replace(' ', '-')}-phone.png"
                page.screenshot(path=SCREENSHOTS / name, full_page=True)

    page.click("text=Sign out")
    page.wait_for_url(f"{base}/dashboard/login")
