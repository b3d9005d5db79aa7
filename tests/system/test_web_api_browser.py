"""The Web API from web pages in a real browser (headless Chromium, Debian's package): a page of an
origin the app lists calls it, a page of another origin is stopped by the browser (CORS).

Skipped when Chromium is not installed, except under CI (``CI=true``), where it fails.
"""

import os
import shutil
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import httpx
import pytest
from support.loopback import LoopbackServer
from support.serving import operator_env, run, run_json, serving

pytestmark = pytest.mark.slow  # a system test: it starts processes (CI runs it with -m slow)

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

if not Path(CHROMIUM).exists():
    if os.environ.get("CI") == "true":
        raise RuntimeError("Chromium is missing: .ci/run installs Debian's chromium package")
    pytest.skip("Chromium is not installed (apt-get install chromium)", allow_module_level=True)

sync_api = pytest.importorskip("playwright.sync_api")


class BlankPage(BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"<!doctype html><title>shop</title>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


CALL = """async ([url, key, channel]) => {
    try {
        const response = await fetch(url, {
            method: "POST",
            headers: {"Authorization": "Api-Key " + key, "Content-Type": "application/json"},
            body: JSON.stringify({status: "organic", channel: channel, customer_user_id: "visitor"}),
        });
        return String(response.status);
    } catch (error) {
        return "blocked";
    }
}"""


def test_only_pages_of_listed_origins_may_call(tmp_path):
    env = operator_env(tmp_path / "data")
    run(env, "migrate")
    app = run_json(env, "apps", "create", "--name", "Web shop")
    with LoopbackServer(BlankPage) as allowed, LoopbackServer(BlankPage) as stranger, serving(env) as base:
        run(env, "apps", "web-origins", "--app", app["app_id"], "--origin", allowed.url)
        headers = {"Authorization": f"Api-Key {app['secret_api_key']}", "adapty-customer-user-id": "visitor"}
        assert httpx.post(f"{base}/api/v2/server-side-api/profile/", headers=headers, json={}).status_code == 200
        url = f"{base}/api/v2/web-api/attribution/"
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM,
                headless=True,
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
            )
            try:
                page = browser.new_page()
                page.goto(allowed.url + "/")
                assert page.evaluate(CALL, [url, app["public_api_key"], "allowed"]) == "201"
                page.goto(stranger.url + "/")
                assert page.evaluate(CALL, [url, app["public_api_key"], "stranger"]) == "blocked"
            finally:
                browser.close()
    exported = run(env, "export", "--app", app["app_id"], "profiles", "--format", "csv").stdout
    # The stranger's call never reached the app: the browser stopped it at its preflight.
    assert "allowed" in exported and "stranger" not in exported
