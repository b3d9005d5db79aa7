"""What an outside attacker tried, replayed: each attempt that found something, and the fix that
stops it. (Cross-app access, key handling, CSRF and kill -9 have their own files: test_isolation,
test_auth, test_dashboard, test_crash; the webhook SSRF is in test_webhook_targets.)"""

import logging
import re
import socket
import time
import uuid

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import ValidationError
from support.dashboard import EMAIL, PASSWORD, sign_in
from support.database import db_snapshot
from support.fake_google import PACKAGE, PUSH_ACCOUNT, PUSH_AUDIENCE
from support.play_store import VALIDATE, Play, purchase
from support.serving import free_port, operator_env, run, serving, shop

from subledger.config import Settings
from subledger.core.http import RedactStoreQueries
from subledger.dashboard import service as dashboard_service
from subledger.stores import service as stores_service
from subledger.stores.google import service as google_service

BASE = "/api/v2/server-side-api"


# 1. A flood of sign-ins without credentials -------------------------------------------------


@pytest.fixture
def operator(runtime):
    dashboard_service.create_operator(runtime, EMAIL, PASSWORD)


def test_new_emails_from_one_address_do_not_get_more_attempts(operator, client):
    """The limit of (email, address) alone let each new email through: the address has its own."""
    statuses = [
        sign_in(client, email=f"nobody{n}@example.com", password="wrong password!").status_code
        for n in range(dashboard_service.ADDRESS_BURST + 1)
    ]
    assert statuses == [303] * dashboard_service.ADDRESS_BURST + [429]
    assert sign_in(client).status_code == 429  # the right password too, from that address, for now


def test_sign_ins_past_the_password_checks_a_process_runs_at_once_are_refused_at_once(operator, client, api, runtime):
    """Each check takes 64 MiB and a core: past ``VERIFYING`` at once, 429 without queueing, and
    the API's writes go on (the checks have threads of their own)."""
    held = [dashboard_service.reserve_check() for _ in range(dashboard_service.VERIFYING)]
    assert all(held) and not dashboard_service.reserve_check()
    try:
        before, started = db_snapshot(runtime), time.monotonic()
        refused = sign_in(client)
        assert refused.status_code == 429 and refused.headers["Retry-After"] == "1"
        assert time.monotonic() - started < 5  # answered, not queued behind the checks
        assert db_snapshot(runtime) == before  # not even a write to the limits' buckets
        assert api.create("meanwhile").status_code == 200
    finally:
        for _ in held:
            dashboard_service.release_check()
    assert sign_in(client).status_code == 303  # the checks given back: signing in works


# 2. Request heads of any size ----------------------------------------------------------------


def _answer(sock: socket.socket) -> bytes:
    sock.settimeout(10)
    received = b""
    try:
        while chunk := sock.recv(4096):
            received += chunk
    except ConnectionResetError:
        pass
    return received


@pytest.mark.slow  # starts `subledger serve`
def test_a_head_past_the_bound_gets_431_as_it_arrives(tmp_path):
    env = operator_env(tmp_path / "data")
    run(env, "migrate")
    app = shop(env)
    with serving(env) as base:
        port = int(base.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n")
            assert _answer(sock).startswith(b"HTTP/1.1 431 ")
        with socket.create_connection(("127.0.0.1", port)) as sock:
            # Sixty megabytes of one header: cut off once the bound is passed, not read to the end.
            sent, started = 0, time.monotonic()
            try:
                while sent < 60_000_000:
                    sock.sendall(b"GET /health HTTP/1.1\r\nX-Big: " if sent == 0 else b"a" * 65536)
                    sent += 65536
            except (BrokenPipeError, ConnectionResetError):
                pass
            assert sent < 60_000_000 and time.monotonic() - started < 10
        headers = {"Authorization": f"Api-Key {app['secret_api_key']}", "adapty-customer-user-id": "u"}
        with httpx.Client(base_url=base, headers=headers, timeout=10) as client:
            # A body is not a head: half a megabyte of attributes is answered as ever.
            big = {"custom_attributes": [{"key": f"k{n}", "value": "v" * 40} for n in range(30)]}
            assert client.post(f"{BASE}/profile/", json=big, headers={"X-Pad": "p" * 60_000}).status_code == 200
            assert client.get("/health").status_code == 200


# 3. The Play push secret in the access log -------------------------------------------------------


def _subscription_data(token: str = "tok1") -> dict:
    return {
        "version": "1.0",
        "packageName": PACKAGE,
        "eventTimeMillis": "1735689600000",
        "subscriptionNotification": {"version": "1.0", "notificationType": 4, "purchaseToken": token},
    }


@pytest.fixture
def authenticated(play: Play, api, runtime) -> Play:
    """Play pushes authenticated as Pub/Sub does: Google's OIDC token, no secret in the URL."""
    runtime.settings.google_oauth2_certs_url = play.fake.certs_url
    google_service.configure(
        runtime, uuid.UUID(api.app_id), push_service_account=PUSH_ACCOUNT, push_audience=PUSH_AUDIENCE
    )
    play.fake.subscriptions["tok1"] = purchase()
    play.path = play.path.split("?", 1)[0]
    return play


def test_a_push_with_googles_oidc_token_needs_no_secret_in_its_url(authenticated: Play, api):
    bearer = {"Authorization": f"Bearer {authenticated.fake.push_token()}"}
    response = authenticated.push(_subscription_data(), headers=bearer)
    assert response.status_code == 200 and response.json()["status"] == "applied"
    assert api.get("u1").json()["data"]["subscriptions"]
    again = authenticated.push(_subscription_data("tok2"), headers=bearer)
    assert again.status_code == 200
    assert authenticated.fake.certs_fetched == 1  # kept while Google says they may be


@pytest.mark.parametrize(
    ("why", "claims"),
    [
        ("another audience", {"aud": "https://elsewhere.example.com"}),
        ("another service account", {"email": "someone@evil.example.com"}),
        ("an unverified email", {"email_verified": False}),
        ("another issuer", {"iss": "https://evil.example.com"}),
        ("expired", {"iat": 1_000_000_000, "exp": 1_000_003_600}),
    ],
)
def test_a_push_whose_token_is_not_googles_for_the_subscription_is_refused(
    authenticated: Play, api, runtime, why, claims
):
    token = authenticated.fake.push_token(**claims)
    response = authenticated.push(_subscription_data(), headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 400, why
    assert response.json()["error_code"] == "notification_not_verified"
    assert api.get("u1").json()["data"]["subscriptions"] == []
    assert stores_service.list_refused(runtime, uuid.UUID(api.app_id))


def test_a_token_signed_by_another_key_or_none_at_all_is_refused(authenticated: Play, api, runtime):
    forged = authenticated.fake.push_token(key=rsa.generate_private_key(public_exponent=65537, key_size=2048))
    assert authenticated.push(_subscription_data(), headers={"Authorization": f"Bearer {forged}"}).status_code == 400
    for _ in range(3):  # a key it does not know: Google's certificates fetched again, but not every time
        unknown_key = authenticated.fake.push_token(kid=f"made-up-{uuid.uuid4()}")
        refused = authenticated.push(_subscription_data(), headers={"Authorization": f"Bearer {unknown_key}"})
        assert refused.status_code == 400
    assert authenticated.fake.certs_fetched == 1
    with_secret = google_service.push_path(runtime, uuid.UUID(api.app_id))  # the URL's secret no longer counts
    assert authenticated.push(_subscription_data(), path=with_secret).status_code == 400
    assert api.get("u1").json()["data"]["subscriptions"] == []


def test_googles_certificates_out_of_reach_is_a_503_pubsub_retries(authenticated: Play, runtime):
    runtime.settings.google_oauth2_certs_url = f"http://127.0.0.1:{free_port()}/oauth2/v1/certs"
    bearer = {"Authorization": f"Bearer {authenticated.fake.push_token()}"}
    assert authenticated.push(_subscription_data(), headers=bearer).status_code == 503


def test_store_urls_keep_their_query_strings_out_of_the_access_log():
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        "",
        0,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "POST", "/stores/play-store/app/notifications/?token=SECRET", "1.1", 200),
        None,
    )
    assert RedactStoreQueries().filter(record)
    assert "SECRET" not in record.getMessage() and "/stores/play-store/app/notifications/" in record.getMessage()
    api_call = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        "",
        0,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", "/api/v2/web-api/paywall/?x=1", "1.1", 200),
        None,
    )
    RedactStoreQueries().filter(api_call)
    assert "?x=1" in api_call.getMessage()


# 4. Play purchase tokens that leave the API path ------------------------------------------------


@pytest.mark.parametrize("token", [".", "..", "...", "t\u00f8k", "tok/../x", "%2e%2e", "a" * 4097])
def test_a_token_that_is_not_one_of_plays_never_reaches_its_api(play: Play, api, token):
    """Dots alone would move the request, with the app's credentials, to another path of the API."""
    assert play.notify(4, token=token) == "ignored"
    assert play.fake.paths == []
    assert api.request("POST", VALIDATE, "u1", json={"purchase_token": token}).status_code == 400
    assert play.fake.paths == []


def test_a_token_is_percent_encoded_in_the_path(play: Play):
    play.fake.subscriptions["tok-1.a_b"] = purchase()
    assert play.notify(4, token="tok-1.a_b") == "applied"
    assert play.fake.paths[0].endswith("/purchases/subscriptionsv2/tokens/tok-1.a_b")


# 5. Deep bodies that hold a long number -----------------------------------------------------------


@pytest.mark.parametrize("depth", [600, 960, 1023])
def test_a_deep_body_with_a_long_number_is_a_parse_error(api, runtime, depth):
    api.create("u")
    before = db_snapshot(runtime)
    body = b'{"custom_attributes": ' + b"[" * depth + b"1234567890123456789012" + b"]" * depth + b"}"
    response = api.client.patch(
        BASE + "/profile/", content=body, headers={**api.headers("u"), "Content-Type": "application/json"}
    )
    assert response.status_code == 400 and response.json()["error_code"] == "parse_error", response.text
    assert db_snapshot(runtime) == before


# 6. The dashboard's headers and cookies ---------------------------------------------------------


def test_dashboard_pages_may_not_be_framed_or_load_anything_else(client):
    for path in ("/dashboard/login", "/dashboard/", "/dashboard/static/dashboard.css"):
        headers = client.get(path, follow_redirects=False).headers
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"], path
        assert "default-src 'none'" in headers["Content-Security-Policy"]
        assert headers["X-Frame-Options"] == "DENY" and headers["Referrer-Policy"] == "same-origin"
    assert "Content-Security-Policy" not in client.get("/health").headers  # the API's are JSON


def test_cookies_are_secure_over_https(operator, runtime):
    from fastapi.testclient import TestClient

    from subledger.app import create_app

    with TestClient(create_app(runtime), base_url="https://dashboard.example") as secure_client:
        page = secure_client.get("/dashboard/login")
        assert "secure" in page.headers["set-cookie"].lower()
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        signed_in = secure_client.post(
            "/dashboard/login", data={"email": EMAIL, "password": PASSWORD, "csrf": csrf}, follow_redirects=False
        )
        assert signed_in.status_code == 303 and "secure" in signed_in.headers["set-cookie"].lower()


# 7. Store APIs reached without TLS ------------------------------------------------------------------


@pytest.mark.parametrize("variable", ["stripe_api_base", "google_play_api_base", "app_store_api_base"])
def test_a_store_api_is_reached_over_tls_unless_it_is_on_this_machine(variable):
    for refused in ("http://api.stripe.com", "http://10.0.0.1", "http://127.0.0.1.example.com", "ftp://x"):
        with pytest.raises(ValidationError, match="https://"):
            Settings(**{variable: refused})
    for allowed in ("https://api.example.com", "http://127.0.0.1:8443", "http://localhost:9", "http://[::1]:9"):
        assert getattr(Settings(**{variable: allowed}), variable) == allowed
