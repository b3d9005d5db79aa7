"""Bad input of every kind gets the contract's 4xx body and changes nothing."""

import pytest
from support.api import BASE
from support.database import db_snapshot

LONG = "x" * 256

# (body, error_code, source of the first error)
DEVICE = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
BAD_BODIES = [
    ({"first_name": 5}, "base_error", "first_name"),
    ({"first_name": LONG}, "base_error", "first_name"),
    ({"email": ["a"]}, "base_error", "email"),
    ({"email": "jane.doe"}, "base_error", "email"),
    ({"email": "Jane <jane@example.com>"}, "base_error", "email"),
    ({"gender": "x"}, "invalid_enumeration_member", "gender"),
    ({"gender": "F"}, "invalid_enumeration_member", "gender"),
    ({"birthday": "2000-13-01"}, "datetime", "birthday"),
    ({"birthday": "31/12/2000"}, "datetime", "birthday"),
    ({"birthday": "2000-12-31T00:00:00Z"}, "datetime", "birthday"),
    ({"ip_country": "ZZ"}, "invalid_enumeration_member", "ip_country"),
    ({"ip_country": "FRA"}, "invalid_enumeration_member", "ip_country"),
    ({"ip_v4_address": "192.168.1.256"}, "base_error", "ip_v4_address"),
    ({"ip_v4_address": "::1"}, "base_error", "ip_v4_address"),
    ({"ip_v4_address": 3232235777}, "base_error", "ip_v4_address"),
    ({"store": ""}, "invalid_enumeration_member", "store"),
    ({"store": "my_store"}, "invalid_enumeration_member", "store"),
    ({"store": LONG}, "invalid_enumeration_member", "store"),
    ({"store_account_token": "not-a-uuid"}, "base_error", "store_account_token"),
    ({"store_account_token": 7}, "base_error", "store_account_token"),
    ({"att_status": 4}, "invalid_enumeration_member", "att_status"),
    ({"att_status": "3"}, "invalid_enumeration_member", "att_status"),
    ({"att_status": True}, "invalid_enumeration_member", "att_status"),
    ({"att_status": 2.5}, "invalid_enumeration_member", "att_status"),
    ({"analytics_disabled": "true"}, "base_error", "analytics_disabled"),
    ({"analytics_disabled": 1}, "base_error", "analytics_disabled"),
    ({"custom_attributes": None}, "base_error", "custom_attributes"),
    ({"custom_attributes": {"a": 1}}, "base_error", "custom_attributes"),
    (
        {"custom_attributes": [{"key": "ok", "value": "v"}, {"key": "bad key", "value": "v"}]},
        "base_error",
        "custom_attributes.1.key",
    ),
    ({"custom_attributes": [{"key": "", "value": "v"}]}, "base_error", "custom_attributes.0.key"),
    ({"custom_attributes": [{"key": "k" * 31, "value": "v"}]}, "base_error", "custom_attributes.0.key"),
    ({"custom_attributes": [{"key": "k", "value": "v" * 51}]}, "base_error", "custom_attributes.0.value"),
    ({"custom_attributes": [{"key": "k", "value": [1]}]}, "base_error", "custom_attributes.0.value"),
    ({"custom_attributes": [{"key": "k", "value": {"a": 1}}]}, "base_error", "custom_attributes.0.value"),
    ({"custom_attributes": [{"key": "k"}]}, "base_error", "custom_attributes.0.value"),
    (
        {"custom_attributes": [{"key": "k", "value": 1}, {"key": "k", "value": 2}]},
        "base_error",
        "custom_attributes.1.key",
    ),
    ({"installation_meta": None}, "base_error", "installation_meta"),
    ({"installation_meta": {}}, "base_error", "installation_meta.device_id"),
    ({"installation_meta": {"device_id": None}}, "base_error", "installation_meta.device_id"),
    ({"installation_meta": {"device_id": "phone"}}, "base_error", "installation_meta.device_id"),
    ({"installation_meta": {"device_id": DEVICE, "os": 17}}, "base_error", "installation_meta.os"),
    ({"installation_meta": {"device_id": LONG}}, "base_error", "installation_meta.device_id"),
    (
        {"installation_meta": {"device_id": DEVICE, "platform": "ios"}},
        "invalid_enumeration_member",
        "installation_meta.platform",
    ),
    (
        {"installation_meta": {"device_id": DEVICE, "user_agent": "u" * 1025}},
        "base_error",
        "installation_meta.user_agent",
    ),
    ({"installation_meta": {"device_id": DEVICE, "app_build": 17}}, "base_error", "installation_meta.app_build"),
]


@pytest.mark.parametrize(("body", "code", "source"), BAD_BODIES)
def test_bad_field_is_400_and_changes_nothing(api, runtime, body, code, source):
    api.create("victim", first_name="Before", custom_attributes=[{"key": "keep", "value": "me"}])
    before = db_snapshot(runtime)
    for response in (api.patch("victim", **body), api.create("newcomer", **body)):
        assert response.status_code == 400, response.text
        payload = response.json()
        assert payload["status_code"] == 400
        assert payload["error_code"] == code
        assert payload["errors"][0]["source"] == source
        assert all(isinstance(message, str) and message for e in payload["errors"] for message in e["errors"])
    assert db_snapshot(runtime) == before


def test_several_wrong_fields_give_several_entries_and_the_first_code(api):
    # "First" is the order of the fields in the contract: first_name comes before gender.
    response = api.create("multi", gender="q", first_name=3, ip_country="XX")
    payload = response.json()
    assert payload["error_code"] == "base_error"
    assert payload["errors"][0]["source"] == "first_name"
    assert {entry["source"] for entry in payload["errors"]} == {"gender", "first_name", "ip_country"}


def test_fields_the_contract_does_not_know_are_ignored(api):
    """As the reference's framework does: a client written for a newer revision keeps working."""
    response = api.create(
        "newer",
        first_name="Jane",
        loyalty_tier="gold",
        custom_attributes=[{"key": "sport", "value": "yoga", "source": "crm"}],
        installation_meta={"device_id": DEVICE, "os": "iOS 18", "screen": {"width": 1170}},
    )
    assert response.status_code == 200, response.text
    assert response.json()["data"]["custom_attributes"] == [{"key": "sport", "value": "yoga"}]
    patched = api.patch("newer", first_name="Janet", nickname="J")
    assert patched.status_code == 200, patched.text


def test_an_empty_json_array_reads_as_an_empty_object(api, runtime):
    """PHP's json_encode() writes an empty associative array as []."""
    for method in ("POST", "PATCH"):
        response = api.client.request(method, BASE + "/profile/", content=b"[]", headers=api.headers("php"))
        assert response.status_code == 200, response.text
    grant = api.client.post(BASE + "/purchase/profile/grant/access-level/", content=b"[]", headers=api.headers("php"))
    assert grant.status_code == 400
    assert grant.json()["errors"][0]["source"] == "access_level_id"


@pytest.mark.parametrize(
    "raw",
    [
        b"{not json",
        b"[1, 2]",
        b'"a string"',
        b"42",
        b"\xff\xfe",
        b'{"first_name": "a",}',
        # Not JSON, though Python's json module reads them: no response or column could hold them.
        b'{"custom_attributes": [{"key": "a", "value": NaN}]}',
        b'{"custom_attributes": [{"key": "a", "value": 1e400}]}',
        b'{"custom_attributes": [{"key": "a", "value": "\\ud800"}]}',
        b'{"a": ' * 2000 + b"1" + b"}" * 2000,
    ],
)
def test_malformed_bodies_are_parse_errors(api, runtime, raw):
    api.create("victim")
    before = db_snapshot(runtime)
    for method in ("POST", "PATCH"):
        response = api.client.request(
            method,
            BASE + "/profile/",
            content=raw,
            headers={**api.headers("victim"), "Content-Type": "application/json"},
        )
        assert response.status_code == 400
        assert response.json()["error_code"] == "parse_error"
        assert response.json()["errors"][0]["source"] == "non_field_errors"
    assert db_snapshot(runtime) == before


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_json_is_read_whatever_the_content_type(api, content_type):
    headers = api.headers("ct")
    if content_type:
        headers["Content-Type"] = content_type
    response = api.client.post(BASE + "/profile/", content=b'{"first_name": "A"}', headers=headers)
    assert response.status_code == 200


def test_oversized_body_is_413_and_changes_nothing(api, runtime):
    before = db_snapshot(runtime)
    huge = b'{"first_name": "' + b"a" * (1024 * 1024) + b'"}'
    response = api.client.post(BASE + "/profile/", content=huge, headers=api.headers("big"))
    assert response.status_code == 413
    assert response.json()["error_code"] == "request_too_large"
    assert db_snapshot(runtime) == before


def test_oversized_streamed_body_without_length_is_413(api):
    def chunks():
        for _ in range(20):
            yield b"x" * 65536

    response = api.client.post(BASE + "/profile/", content=chunks(), headers=api.headers("big"))
    assert response.status_code == 413


@pytest.mark.parametrize(
    ("headers", "source"),
    [
        ({"adapty-profile-id": "not-a-uuid"}, "adapty-profile-id"),
        ({"adapty-customer-user-id": ""}, "adapty-customer-user-id"),
        ({"adapty-customer-user-id": "u" * 256}, "adapty-customer-user-id"),
        ({}, "non_field_errors"),
    ],
)
def test_bad_addressing_headers_are_400(api, headers, source):
    for method in ("GET", "PATCH", "DELETE"):
        response = api.client.request(
            method, BASE + "/profile/", headers={"Authorization": f"Api-Key {api.secret}", **headers}
        )
        assert response.status_code == 400, response.text
        assert response.json()["errors"][0]["source"] == source


def test_null_characters_are_refused_everywhere(api, runtime):
    api.create("victim")
    before = db_snapshot(runtime)
    assert api.patch("victim", first_name="a\x00b").json()["errors"][0]["source"] == "first_name"
    assert api.patch("victim", custom_attributes=[{"key": "k", "value": "\x00"}]).status_code == 400
    assert api.client.get(BASE + "/profile/", headers=api.headers("a\x00b")).status_code == 400
    assert api.client.get("/api/v1/sdk/profiles/a%00b/", headers=api.headers()).status_code == 400
    assert api.client.get("/api/admin/v1/events/?event_type=%00", headers=api.headers()).status_code == 400
    assert db_snapshot(runtime) == before
