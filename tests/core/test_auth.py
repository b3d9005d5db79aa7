"""API keys: the 401s, rotation, and apps that never see each other's data."""

import uuid
from contextlib import contextmanager
from datetime import timedelta

import pytest
from sqlalchemy import event
from support.api import BASE, Api, another_server_process, new_app

from subledger.apps import service as apps_service
from subledger.core.dates import format_datetime
from subledger.core.runtime import Runtime

UNAUTHENTICATED = {
    "errors": [{"source": "non_field_errors", "errors": ["Authentication credentials were not provided."]}],
    "error_code": "not_authenticated",
    "status_code": 401,
}
INVALID = {
    "errors": [{"source": "non_field_errors", "errors": ["Invalid API key."]}],
    "error_code": "not_authenticated",
    "status_code": 401,
}


@pytest.mark.parametrize(
    ("authorization", "expected"),
    [
        (None, UNAUTHENTICATED),
        ("", UNAUTHENTICATED),
        ("Bearer abc", UNAUTHENTICATED),
        ("Api-Key", INVALID),
        ("Api-Key ", INVALID),
        ("Api-Key two words", INVALID),
        ("Api-Key secret_live_unknown", INVALID),
    ],
)
@pytest.mark.parametrize("method", ["GET", "POST", "PATCH", "DELETE"])
def test_missing_malformed_or_unknown_keys_are_401(client, api, authorization, expected, method):
    headers = {"adapty-customer-user-id": "someone"}
    if authorization is not None:
        headers["Authorization"] = authorization
    response = client.request(method, BASE + "/profile/", headers=headers, json={})
    assert response.status_code == 401
    assert response.json() == expected


def test_the_scheme_is_case_insensitive(api):
    response = api.client.post(
        BASE + "/profile/", headers={"Authorization": f"api-key {api.secret}", "adapty-customer-user-id": "u"}
    )
    assert response.status_code == 200


def test_authentication_is_checked_before_the_body(client):
    response = client.post(BASE + "/profile/", content=b"{bad json", headers={"adapty-customer-user-id": "u"})
    assert response.status_code == 401


def test_one_apps_key_never_reaches_another_apps_profile(runtime, client, api):
    other = new_app(runtime, client, "Other App")
    mine = api.create("shared-name", first_name="Mine").json()["data"]
    by_id = {"adapty-profile-id": mine["profile_id"]}

    assert other.get(headers=by_id).status_code == 404
    assert other.request("PATCH", "/profile/", json={"first_name": "Hijacked"}, headers=by_id).status_code == 404
    assert other.request("DELETE", "/profile/", headers=by_id).status_code == 404
    assert other.get("shared-name").status_code == 404

    theirs = other.create("shared-name").json()["data"]
    assert theirs["profile_id"] != mine["profile_id"] and theirs["app_id"] == other.app_id
    assert api.get("shared-name").json()["data"]["profile_id"] == mine["profile_id"]
    assert api.get(headers=by_id).json()["data"]["app_id"] == api.app_id


def test_rotation_revokes_the_old_key_once_the_cache_expires(runtime, client, api, clock):
    assert api.create("rot").status_code == 200
    rotated = apps_service.rotate_key(runtime.db, uuid.UUID(api.app_id), clock.now())
    assert rotated["revoked_keys"] == 1
    new_key = {"Authorization": f"Api-Key {rotated['secret_api_key']}", "adapty-customer-user-id": "rot"}
    assert client.get(BASE + "/profile/", headers=new_key).status_code == 200

    clock.advance(seconds=runtime.settings.api_key_cache_seconds + 1)
    assert api.get("rot").status_code == 401


def test_a_rotation_with_grace_keeps_the_earlier_key_working_until_then_and_no_longer(runtime, client, api, clock):
    assert api.create("rot").status_code == 200
    app_id = uuid.UUID(api.app_id)
    clock.advance(seconds=1)
    rotated = apps_service.rotate_key(runtime.db, app_id, clock.now(), grace=timedelta(seconds=60))
    assert rotated["revoked_keys"] == 1
    assert rotated["earlier_keys_work_until"] == format_datetime(clock.now() + timedelta(seconds=60))
    new_key = {"Authorization": f"Api-Key {rotated['secret_api_key']}", "adapty-customer-user-id": "rot"}
    [listed] = apps_service.list_apps(runtime.db, clock.now())
    assert listed["active_keys"] == 2 and rotated["secret_api_key"].startswith(listed["key_prefix"])

    clock.advance(seconds=58)
    assert api.get("rot").status_code == 200  # read from the database, trusted for at most 2 s more
    clock.advance(seconds=3)
    assert api.get("rot").status_code == 401  # the cache does not outlive the key
    assert client.get(BASE + "/profile/", headers=new_key).status_code == 200
    assert apps_service.list_apps(runtime.db, clock.now())[0]["active_keys"] == 1


def test_rotating_again_ends_a_grace_sooner_never_later(runtime, api, clock):
    app_id = uuid.UUID(api.app_id)
    apps_service.rotate_key(runtime.db, app_id, clock.now(), grace=timedelta(hours=1))
    second = apps_service.rotate_key(runtime.db, app_id, clock.now(), grace=timedelta(hours=2))
    assert second["revoked_keys"] == 1  # the first rotation's key; the original still ends in an hour
    clock.advance(minutes=61)
    assert api.get("nobody").status_code == 401
    assert apps_service.list_apps(runtime.db, clock.now())[0]["active_keys"] == 2
    apps_service.rotate_key(runtime.db, app_id, clock.now())
    assert apps_service.list_apps(runtime.db, clock.now())[0]["active_keys"] == 1


def test_keys_are_stored_hashed(runtime, api):
    with runtime.db.read() as conn:
        query = "SELECT kind, key_hash, key_prefix FROM api_keys ORDER BY kind"
        stored = {kind: (key_hash, prefix) for kind, key_hash, prefix in conn.exec_driver_sql(query)}
    assert set(stored) == {"public", "secret"}
    for kind, key in (("secret", api.secret), ("public", api.public)):
        key_hash, prefix = stored[kind]
        assert key not in key_hash and len(key_hash) == 64
        assert key.startswith(prefix) and len(prefix) < len(key) // 2


def test_an_apps_rate_limit_answers_429_with_retry_after(runtime, client, api, clock):
    apps_service.configure(runtime.db, uuid.UUID(api.app_id), rate_limit=2)
    other = new_app(runtime, client, "Unlimited")
    clock.advance(seconds=runtime.settings.api_key_cache_seconds + 1)  # the new limit is seen
    statuses = [api.get("nobody").status_code for _ in range(6)]
    assert statuses == [404, 404, 404, 404, 429, 429]  # a burst of twice the rate, then throttled
    throttled = api.get("nobody")
    assert throttled.json() == {
        "errors": [
            {"source": "non_field_errors", "errors": ["Request was throttled. Expected available in 1 seconds."]}
        ],
        "error_code": "rate_limited",
        "status_code": 429,
    }
    assert throttled.headers["Retry-After"] == "1"
    assert other.get("nobody").status_code == 404  # other apps are not affected
    clock.advance(seconds=1)
    assert [api.get("nobody").status_code for _ in range(3)] == [404, 404, 429]
    apps_service.configure(runtime.db, uuid.UUID(api.app_id), rate_limit=apps_service.UNLIMITED)
    clock.advance(seconds=runtime.settings.api_key_cache_seconds + 1)
    assert all(api.get("nobody").status_code == 404 for _ in range(20))


@contextmanager
def another_process(runtime: Runtime, api: Api):
    """The app's client of a second server process on the same database (and clock)."""
    with another_server_process(runtime) as client:
        yield Api(client, api.secret, api.app_id)


def test_server_processes_share_an_apps_rate_limit(runtime, api, clock):
    apps_service.configure(runtime.db, uuid.UUID(api.app_id), rate_limit=3)
    with another_process(runtime, api) as other:
        both = [api, other] * 6
        statuses = [client.get("nobody").status_code for client in both]
        # Twice the rate in all, not twice the rate in each process.
        assert statuses == [404] * 6 + [429] * 6
        clock.advance(seconds=1)
        assert [client.get("nobody").status_code for client in both] == [404] * 3 + [429] * 9


def test_leases_add_up_to_the_rate_across_processes(runtime, api, clock):
    """With a rate of 50 a process leases 5 requests at a time; all of them are spent
    while both processes keep asking, so together they admit exactly the burst."""
    apps_service.configure(runtime.db, uuid.UUID(api.app_id), rate_limit=50)
    with another_process(runtime, api) as other:
        statuses = [client.get("nobody").status_code for client in [api, other] * 60]
    assert statuses.count(404) == 100 and statuses[-4:] == [429] * 4


@contextmanager
def statements(runtime: Runtime):
    """The SQL statements the runtime's database is sent meanwhile."""
    sent: list[str] = []

    def listener(_conn, _cursor, statement, *_args):
        sent.append(statement)

    event.listen(runtime.db.engine, "before_cursor_execute", listener)
    try:
        yield sent
    finally:
        event.remove(runtime.db.engine, "before_cursor_execute", listener)


def test_a_rate_limit_writes_once_per_lease_and_never_for_a_refusal(runtime, api, clock):
    apps_service.configure(runtime.db, uuid.UUID(api.app_id), rate_limit=100)
    clock.advance(seconds=runtime.settings.api_key_cache_seconds + 1)
    api.get("nobody")  # the key is checked and cached
    with statements(runtime) as sent:
        admitted = [api.get("nobody").status_code for _ in range(199)]
    assert admitted == [404] * 199
    updates = [statement for statement in sent if statement.startswith("UPDATE rate_buckets")]
    # The burst is 200: the request before leased the first 10, these leased 19 times 10 more.
    assert len(updates) == 19
    refused = api.get("nobody")
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "1"
    with statements(runtime) as sent:
        assert {api.get("nobody").status_code for _ in range(50)} == {429}
    assert sent == []


def test_a_public_key_opens_the_web_api_alone_and_a_secret_key_does_not(runtime, client, api):
    api.create("u")
    as_public = {"Authorization": f"Api-Key {api.public}", "adapty-customer-user-id": "u"}
    assert api.public.startswith("public_live_")
    for method, path in (
        ("GET", BASE + "/profile/"),
        ("GET", "/api/admin/v1/products/"),
        ("GET", "/api/v1/sdk/profiles/u/"),
    ):
        response = client.request(method, path, headers=as_public)
        assert response.status_code == 401 and response.json()["error_code"] == "not_authenticated", path
    attribution = {"status": "organic", "customer_user_id": "u"}
    with_secret = client.post("/api/v2/web-api/attribution/", json=attribution, headers=api.headers())
    assert with_secret.status_code == 401 and with_secret.json()["error_code"] == "not_authenticated"
    with_public = client.post(
        "/api/v2/web-api/attribution/", json=attribution, headers={"Authorization": f"Api-Key {api.public}"}
    )
    assert with_public.status_code == 201, with_public.text


def test_rotating_the_public_key_leaves_the_secret_key_alone(runtime, client, api, clock):
    app_id = uuid.UUID(api.app_id)
    rotated = apps_service.rotate_key(runtime.db, app_id, clock.now(), kind="public")
    assert rotated["revoked_keys"] == 1 and rotated["public_api_key"].startswith("public_live_")
    [listed] = apps_service.list_apps(runtime.db, clock.now())
    assert rotated["public_api_key"].startswith(listed["public_key_prefix"]) and listed["active_keys"] == 1
    clock.advance(seconds=runtime.settings.api_key_cache_seconds + 1)
    assert api.create("still-works").status_code == 200
    old_public = {"Authorization": f"Api-Key {api.public}"}
    assert (
        client.post("/api/v2/web-api/attribution/", json={"status": "organic"}, headers=old_public).status_code == 401
    )
