"""The dashboard's Stores page: each connected store's last notification and last refused request."""

import base64
import re
import uuid

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from support.app_store import renewal, transaction
from support.apple_signing import AppleChain
from support.dashboard import EMAIL, PASSWORD, sign_in
from support.fake_google import FakeGoogle

from subledger.dashboard import service as dashboard_service
from subledger.stores import service as stores_service


def cell(html: str, name: str) -> str:
    return re.sub(r"\s+", " ", re.search(rf'<td class="{name}">(.*?)</td>', html, re.S).group(1)).strip()


def test_a_store_shows_its_last_notification_and_its_last_refused_request(store, client, runtime):
    dashboard_service.create_operator(runtime, EMAIL, PASSWORD)
    sign_in(client)
    page = client.get(f"/dashboard/apps/{store.api.app_id}/stores/").text
    assert (cell(page, "last-notification"), cell(page, "last-refused")) == ("none yet", "none")

    assert store.notify("SUBSCRIBED/INITIAL_BUY", transaction(appAccountToken="u1"), renewal()) == "applied"
    forged = client.post(store.url, json={"signedPayload": "not.a.jws"})
    assert forged.status_code == 400
    page = client.get(f"/dashboard/apps/{store.api.app_id}/stores/").text
    assert cell(page, "last-notification").endswith("· SUBSCRIBED/INITIAL_BUY · applied")
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d · .+", cell(page, "last-refused"))


def post_store(client, api, store: str, files=None, **fields):
    page = client.get(f"/dashboard/apps/{api.app_id}/stores/").text
    fields["csrf"] = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    answer = client.post(
        f"/dashboard/apps/{api.app_id}/stores/{store}/", data=fields, files=files, follow_redirects=False
    )
    assert answer.status_code == 303
    return client.get(answer.headers["location"]).text


def connected(api, store: str) -> dict | None:
    return next((c for c in api.admin("GET", "/stores/").json()["data"] if c["store"] == store), None)


def p8() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def test_the_app_store_is_connected_from_its_form_and_a_blank_key_keeps_the_one_set(api, client, runtime):
    dashboard_service.create_operator(runtime, EMAIL, PASSWORD)
    sign_in(client)
    chain = AppleChain()
    fields = {"bundle_id": "com.example.shop", "app_apple_id": "1234567890", "issuer_id": "iss-1", "key_id": "KEY1"}
    root = {"root_certificates": ("AppleRootCA-G3.cer", chain.root_der, "application/pkix-cert")}
    page = post_store(client, api, "app_store", files=root, **fields, private_key=p8())
    assert "App Store saved." in page
    saved = connected(api, "app_store")
    assert saved["settings"] == {**fields, "app_apple_id": 1234567890} and saved["secrets"] == ["private_key"]
    stored = stores_service.config(runtime, uuid.UUID(api.app_id), "app_store")
    assert stored.settings["root_certificates"] == [base64.b64encode(chain.root_der).decode()]

    # The App Store's signed notifications now verify against that root.
    notify = {"signedPayload": chain.sign({"notificationType": "TEST", "notificationUUID": str(uuid.uuid4()),
              "data": {"bundleId": "com.example.shop", "environment": "Sandbox"}, "version": "2.0",
              "signedDate": 1735689600000})}  # fmt: skip
    assert client.post(f"/stores/app-store/{api.app_id}/notifications/", json=notify).status_code == 200

    page = post_store(client, api, "app_store", **{**fields, "key_id": "KEY2"}, private_key="")
    assert connected(api, "app_store")["secrets"] == ["private_key"]  # blank: kept
    assert connected(api, "app_store")["settings"]["key_id"] == "KEY2"
    activity = client.get(f"/dashboard/apps/{api.app_id}/activity/").text  # names the file, never the key
    assert "AppleRootCA-G3.cer" in activity and "PRIVATE KEY" not in activity


@pytest.mark.parametrize(
    ("fields", "files", "why"),
    [
        ({"app_apple_id": "twelve"}, None, "valid integer"),
        ({}, {"root_certificates": ("junk.cer", b"not a certificate", "application/pkix-cert")}, "Not an X.509"),
        ({"private_key": "-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----"}, None, "private key"),
    ],
)
def test_an_app_store_form_the_service_refuses_shows_why_and_changes_nothing(api, client, runtime, fields, files, why):
    dashboard_service.create_operator(runtime, EMAIL, PASSWORD)
    sign_in(client)
    page = post_store(client, api, "app_store", files=files, bundle_id="com.example.shop", **fields)
    assert why in re.search(r'<p class="error">(.*?)</p>', page, re.S).group(1)
    assert connected(api, "app_store") is None


def test_google_play_is_connected_from_its_form_and_owners_see_the_push_path(api, client, runtime):
    dashboard_service.create_operator(runtime, EMAIL, PASSWORD)
    sign_in(client)
    with FakeGoogle() as google:
        key = google.service_account()
    page = post_store(client, api, "play_store", package_name="com.example.shop", service_account=key)
    assert "Google Play saved." in page
    token = stores_service.config(runtime, uuid.UUID(api.app_id), "play_store").secrets["push_token"]
    path = re.search(r'<code class="push-path">(.*?)</code>', page).group(1).replace("&amp;", "&")
    assert path == f"/stores/play-store/{api.app_id}/notifications/?token={token}"

    refused = post_store(client, api, "play_store", push_service_account="pubsub@example.iam.gserviceaccount.com")
    assert "together" in refused and connected(api, "play_store")["settings"]["push_service_account"] == ""
    post_store(client, api, "play_store", push_service_account="pubsub@example.iam.gserviceaccount.com",
               push_audience="https://example.com/push")  # fmt: skip
    settings = connected(api, "play_store")["settings"]
    assert settings["push_audience"] == "https://example.com/push" and settings["package_name"] == "com.example.shop"
    post_store(client, api, "play_store", push_service_account="", push_audience="")  # cleared: the token counts again
    assert connected(api, "play_store")["settings"]["push_audience"] == ""
    assert connected(api, "play_store")["secrets"] == ["push_token", "service_account"]


def test_the_admin_api_connects_the_app_store_and_play(api):
    chain = AppleChain()
    roots = [chain.root_pem.decode(), base64.b64encode(chain.root_der).decode()]
    answer = api.admin("PUT", "/stores/app-store/", {"bundle_id": "com.example.shop", "root_certificates": roots})
    assert answer.status_code == 200 and answer.json()["data"]["settings"]["bundle_id"] == "com.example.shop"
    refused = api.admin("PUT", "/stores/app-store/", {"root_certificates": ["%%%"]})
    assert refused.status_code == 400 and refused.json()["errors"][0]["source"] == "root_certificates"
    with FakeGoogle() as google:
        played = api.admin("PUT", "/stores/play-store/", {"package_name": "com.example.shop",
                                                          "service_account": google.service_account()})  # fmt: skip
    assert played.status_code == 200
    assert played.json()["data"]["push_path"].startswith(f"/stores/play-store/{api.app_id}/notifications/?token=")
    assert api.admin("PUT", "/stores/play-store/", {"service_account": "{}"}).status_code == 400
