"""The profile endpoints, end to end through HTTP, on SQLite and PostgreSQL."""

import re
import uuid

from sqlalchemy import select
from support.api import BASE, new_app
from support.database import db_snapshot
from support.profiles import PHONE, TABLET

from subledger.core.tables import installations, profiles

JANE = {
    "first_name": "Jane",
    "last_name": "Doe",
    "gender": "f",
    "email": "jane.doe@example.com",
    "phone_number": "+13059999999",
    "birthday": "2000-12-31",
    "ip_country": "FR",
    "store_country": "US",
    "store": "app_store",
    "analytics_disabled": True,
    "custom_attributes": [{"key": "favourite_sport", "value": "yoga"}],
    "installation_meta": {
        "device_id": "3fa85f64-5717-4562-b3fc-2c963f66afa6",
        "device": "iPhone 15",
        "locale": "fr_FR",
        "os": "iOS 18.1",
        "platform": "iOS",
        "timezone": "Europe/Paris",
        "user_agent": "MyApp/1.0",
        "idfa": "00000000-0000-0000-0000-000000000001",
        "idfv": "00000000-0000-0000-0000-000000000002",
        "advertising_id": "00000000-0000-0000-0000-000000000003",
        "android_id": None,
        "android_app_set_id": None,
    },
}


def _stored(runtime, table, **where):
    with runtime.db.read() as conn:
        query = select(table)
        for column, value in where.items():
            query = query.where(table.c[column] == value)
        return [dict(row._mapping) for row in conn.execute(query)]


def test_the_reference_create_example_comes_back_as_documented(api, clock):
    response = api.create("jane.doe@example.com", **JANE)
    assert response.status_code == 200
    body = response.json()
    data = body["data"]
    assert list(body) == ["data"]
    assert list(data) == [
        "app_id",
        "profile_id",
        "customer_user_id",
        "total_revenue_usd",
        "segment_hash",
        "timestamp",
        "custom_attributes",
        "access_levels",
        "subscriptions",
        "non_subscriptions",
    ]
    assert data["app_id"] == api.app_id
    assert uuid.UUID(data["profile_id"])
    assert data["customer_user_id"] == "jane.doe@example.com"
    assert data["total_revenue_usd"] == 0.0 and isinstance(data["total_revenue_usd"], float)
    assert re.fullmatch(r"[0-9a-f]{16}", data["segment_hash"])
    assert data["timestamp"] == int(clock.now().timestamp() * 1000)
    assert data["custom_attributes"] == [{"key": "favourite_sport", "value": "yoga"}]
    assert data["access_levels"] == data["subscriptions"] == data["non_subscriptions"] == []


def test_create_stores_every_field_and_drops_ad_ids_when_analytics_disabled(api, runtime):
    profile_id = api.create("jane", **JANE).json()["data"]["profile_id"]
    [row] = _stored(runtime, profiles, id=uuid.UUID(profile_id))
    assert (row["first_name"], row["last_name"], row["gender"], row["email"]) == ("Jane", "Doe", "f", JANE["email"])
    assert str(row["birthday"]) == "2000-12-31"
    assert (row["ip_country"], row["store_country"], row["store"], row["analytics_disabled"]) == (
        "FR",
        "US",
        "app_store",
        True,
    )
    [device] = _stored(runtime, installations, profile_id=uuid.UUID(profile_id))
    assert device["device_id"] == JANE["installation_meta"]["device_id"]
    assert device["os"] == "iOS 18.1" and device["timezone"] == "Europe/Paris"
    assert device["idfa"] is None and device["idfv"] is None and device["advertising_id"] is None


def test_ad_ids_are_kept_when_analytics_enabled_and_wiped_when_it_is_disabled(api, runtime):
    meta = {**JANE["installation_meta"]}
    profile_id = uuid.UUID(api.create("sam", installation_meta=meta).json()["data"]["profile_id"])
    [device] = _stored(runtime, installations, profile_id=profile_id)
    assert device["idfa"] == meta["idfa"] and device["advertising_id"] == meta["advertising_id"]

    assert api.patch("sam", analytics_disabled=True).status_code == 200
    [device] = _stored(runtime, installations, profile_id=profile_id)
    assert device["idfa"] is None and device["idfv"] is None and device["advertising_id"] is None
    assert device["os"] == meta["os"]


def test_installation_meta_is_one_row_per_device_and_the_latest_write_wins(api, runtime):
    api.create("dev", installation_meta={"device_id": PHONE, "os": "iOS 17", "locale": "en"})
    api.patch("dev", installation_meta={"device_id": PHONE, "os": "iOS 18"})
    api.request(
        "PATCH",
        "/profile/",
        "dev",
        json={"installation_meta": {"device_id": TABLET}},
        headers={"adapty-platform": "Android"},
    )
    rows = sorted(_stored(runtime, installations), key=lambda row: row["device_id"])
    assert [(r["device_id"], r["os"], r["locale"], r["platform"]) for r in rows] == [
        (PHONE, "iOS 18", None, None),
        (TABLET, None, None, "Android"),
    ]


def test_a_platform_header_longer_than_the_field_is_refused(api, runtime):
    api.create("dev")
    before = db_snapshot(runtime)
    body = {"installation_meta": {"device_id": PHONE}}
    for method, user in (("POST", "new"), ("PATCH", "dev")):
        response = api.request(method, "/profile/", user, json=body, headers={"adapty-platform": "x" * 256})
        assert response.status_code == 400 and response.json()["errors"][0]["source"] == "adapty-platform"
    assert db_snapshot(runtime) == before


def test_get_by_either_header_and_by_both(api):
    created = api.create("both", **JANE).json()["data"]
    by_cuid = api.get("both")
    by_id = api.get(headers={"adapty-profile-id": created["profile_id"]})
    by_both = api.get("both", headers={"adapty-profile-id": created["profile_id"]})
    for response in (by_cuid, by_id, by_both):
        assert response.status_code == 200
        assert response.json()["data"]["profile_id"] == created["profile_id"]


def test_headers_naming_two_different_profiles_are_refused(api):
    first = api.create("first").json()["data"]
    api.create("second")
    response = api.get("second", headers={"adapty-profile-id": first["profile_id"]})
    assert response.status_code == 400
    assert response.json()["error_code"] == "value_error"
    assert response.json()["errors"][0]["source"] == "non_field_errors"


def test_unknown_profile_is_404_with_the_contract_body(api):
    for response in (
        api.get("nobody"),
        api.patch("nobody", first_name="x"),
        api.delete("nobody"),
        api.get(headers={"adapty-profile-id": str(uuid.uuid4())}),
    ):
        assert response.status_code == 404
        assert response.json() == {
            "errors": [{"source": None, "errors": ["Profile not found"]}],
            "error_code": "profile_does_not_exist",
            "status_code": 404,
        }


def test_creating_a_profile_that_exists_applies_the_fields_to_it(api, runtime):
    first = api.create("twice", first_name="One", custom_attributes=[{"key": "a", "value": "1"}]).json()["data"]
    again = api.create("twice", first_name="Two", custom_attributes=[{"key": "b", "value": "2"}])
    assert again.status_code == 200
    assert again.json()["data"]["profile_id"] == first["profile_id"]
    assert again.json()["data"]["custom_attributes"] == [{"key": "a", "value": "1"}, {"key": "b", "value": "2"}]
    [row] = _stored(runtime, profiles, customer_user_id="twice")
    assert row["first_name"] == "Two"
    feed = api.client.get("/api/admin/v1/events/", headers=api.headers()).json()["data"]
    assert [event["event_type"] for event in feed] == ["profile_created"]  # made once


def test_create_needs_an_addressing_header(api):
    response = api.request("POST", "/profile/", json={})
    assert response.status_code == 400
    assert response.json()["error_code"] == "base_error"


def by_id(api, profile_id: str, customer_user_id: str | None = None, **fields):
    return api.request("POST", "/profile/", customer_user_id, json=fields, headers={"adapty-profile-id": profile_id})


def test_create_by_profile_id_makes_an_anonymous_profile_with_that_id(api):
    chosen = str(uuid.uuid4())
    response = by_id(api, chosen, first_name="Anon")
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert (data["profile_id"], data["customer_user_id"]) == (chosen, None)
    assert api.get(headers={"adapty-profile-id": chosen}).json()["data"]["profile_id"] == chosen
    assert by_id(api, chosen).json()["data"]["profile_id"] == chosen  # it exists: named again
    both = str(uuid.uuid4())
    named = by_id(api, both, "known").json()["data"]
    assert (named["profile_id"], named["customer_user_id"]) == (both, "known")


def test_create_with_both_headers_gives_an_anonymous_profile_its_user_id(api, runtime):
    """As the reference documents it: both headers attach a customer_user_id to an existing profile."""
    anonymous = str(uuid.uuid4())
    by_id(api, anonymous)
    attached = by_id(api, anonymous, "signed-up", first_name="Sam")
    assert attached.status_code == 200
    assert (attached.json()["data"]["profile_id"], attached.json()["data"]["customer_user_id"]) == (
        anonymous,
        "signed-up",
    )
    assert api.get("signed-up").json()["data"]["profile_id"] == anonymous
    before = db_snapshot(runtime)
    for response in (
        by_id(api, anonymous, "someone-else"),  # it has a user id already
        by_id(api, str(uuid.uuid4()), "signed-up"),  # the user id is another profile's
    ):
        assert response.status_code == 400 and response.json()["error_code"] == "value_error"
    assert db_snapshot(runtime) == before


def test_a_profile_id_another_app_holds_is_not_found(api, runtime, client):
    other = new_app(runtime, client, "Other")
    taken = other.create("theirs").json()["data"]["profile_id"]
    before = db_snapshot(runtime)
    response = by_id(api, taken, first_name="Mine")
    assert response.status_code == 404 and response.json()["error_code"] == "profile_does_not_exist"
    assert db_snapshot(runtime) == before


def test_create_without_a_body_makes_an_empty_profile(api):
    response = api.client.post(BASE + "/profile/", headers=api.headers("nobody-body"))
    assert response.status_code == 200
    assert response.json()["data"]["custom_attributes"] == []


# The schema-level example of the contract's ProfileRequest: every field it documents.
REFERENCE_PROFILE = {
    "first_name": "Jane",
    "last_name": "Doe",
    "gender": "f",
    "email": "jane.doe@example.com",
    "phone_number": "+1234567890",
    "birthday": "2000-12-31",
    "ip_country": "FR",
    "ip_v4_address": "192.168.1.1",
    "store_country": "US",
    "store": "app_store",
    "store_account_token": "3fa85f64-5717-4562-b3fc-2c963f66afa6",
    "att_status": 3,
    "analytics_disabled": True,
    "custom_attributes": [{"key": "favourite_sport", "value": "yoga"}],
    "installation_meta": {
        "device_id": "3fa85f64-5717-4562-b3fc-2c963f66afa6",
        "device": "iPhone 15 Pro",
        "locale": "en",
        "os": "iOS 17.1",
        "platform": "iOS",
        "timezone": "Europe/Rome",
        "user_agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1_1 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
        "app_build": "1.0.0",
        "app_version": "1.0.0",
        "adapty_sdk_version": "2.0.0",
        "idfa": "EA7583CD-A667-48BC-B806-42ECB2B48333",
        "idfv": "E9D48DA5-3930-4B41-8521-D953AECD2F33",
        "advertising_id": "",
        "android_id": "",
        "android_app_set_id": "",
    },
}


def test_every_field_of_the_contract_is_accepted_and_stored(api, runtime):
    for method, user in (("POST", "everything"), ("PATCH", "everything")):
        response = api.request(method, "/profile/", user, json=REFERENCE_PROFILE)
        assert response.status_code == 200, response.text
    [row] = _stored(runtime, profiles, customer_user_id="everything")
    assert (row["ip_v4_address"], str(row["store_account_token"]), row["att_status"]) == (
        "192.168.1.1",
        REFERENCE_PROFILE["store_account_token"],
        3,
    )
    [device] = _stored(runtime, installations, profile_id=row["id"])
    assert (device["app_build"], device["app_version"], device["adapty_sdk_version"]) == ("1.0.0", "1.0.0", "2.0.0")
    assert device["user_agent"] == REFERENCE_PROFILE["installation_meta"]["user_agent"]


def test_null_clears_a_field_but_leaves_analytics_disabled_as_it_is(api, runtime):
    api.create("nulls", **REFERENCE_PROFILE)
    cleared = dict.fromkeys(["birthday", "ip_country", "ip_v4_address", "store", "store_account_token", "att_status"])
    response = api.patch("nulls", **cleared, analytics_disabled=None, custom_attributes=[])
    assert response.status_code == 200, response.text
    [row] = _stored(runtime, profiles, customer_user_id="nulls")
    assert all(row[name] is None for name in cleared)
    assert row["analytics_disabled"] is True
    assert row["custom_attributes"] == {"favourite_sport": "yoga"}


def test_custom_attribute_values_hold_fifty_characters(api):
    value = "v" * 50
    data = api.create("fifty", custom_attributes=[{"key": "long", "value": value}]).json()["data"]
    assert data["custom_attributes"] == [{"key": "long", "value": value}]


def test_patch_changes_only_the_fields_sent(api, runtime):
    api.create("patchy", **JANE)
    assert api.patch("patchy", first_name="Janet", email=None).status_code == 200
    [row] = _stored(runtime, profiles, customer_user_id="patchy")
    assert row["first_name"] == "Janet" and row["email"] is None
    assert row["last_name"] == "Doe" and row["gender"] == "f" and row["ip_country"] == "FR"


def test_custom_attributes_merge_delete_and_sort(api):
    api.create("attrs", custom_attributes=[{"key": "b", "value": "x"}, {"key": "a", "value": 1}])
    data = api.patch(
        "attrs", custom_attributes=[{"key": "c", "value": True}, {"key": "b", "value": ""}, {"key": "z", "value": 2.5}]
    ).json()["data"]
    assert data["custom_attributes"] == [
        {"key": "a", "value": 1.0},
        {"key": "c", "value": 1.0},
        {"key": "z", "value": 2.5},
    ]
    data = api.patch("attrs", custom_attributes=[{"key": "a", "value": None}]).json()["data"]
    assert [item["key"] for item in data["custom_attributes"]] == ["c", "z"]


def test_thirty_custom_attributes_is_the_limit_after_the_change(api, runtime):
    full = [{"key": f"k{i:02d}", "value": str(i)} for i in range(30)]
    assert api.create("full", custom_attributes=full).status_code == 200
    before = db_snapshot(runtime)
    response = api.patch("full", custom_attributes=[{"key": "one_more", "value": "x"}])
    assert response.status_code == 400
    assert response.json()["errors"][0]["source"] == "custom_attributes"
    assert db_snapshot(runtime) == before
    swap = [{"key": "k00", "value": None}, {"key": "one_more", "value": "x"}]
    assert len(api.patch("full", custom_attributes=swap).json()["data"]["custom_attributes"]) == 30


def test_delete_removes_everything_and_a_new_create_gets_a_new_id(api, runtime):
    old = api.create("gone", **JANE).json()["data"]
    response = api.delete("gone")
    assert response.status_code == 204 and response.content == b""
    assert api.get("gone").status_code == 404
    assert _stored(runtime, installations) == []
    new = api.create("gone").json()["data"]
    assert new["profile_id"] != old["profile_id"]


def test_timestamp_strictly_increases_even_within_one_millisecond(api, clock):
    stamps = [api.create("tick").json()["data"]["timestamp"]]
    for _ in range(3):
        stamps.append(api.get("tick").json()["data"]["timestamp"])
        stamps.append(api.patch("tick", first_name="x").json()["data"]["timestamp"])
    assert stamps == sorted(set(stamps))


def test_segment_hash_follows_segmenting_data_only(api):
    first = api.create("seg", custom_attributes=[{"key": "level", "value": 3}]).json()["data"]["segment_hash"]
    assert api.patch("seg", first_name="Irrelevant").json()["data"]["segment_hash"] == first
    after_attr = api.patch("seg", custom_attributes=[{"key": "level", "value": 4}]).json()["data"]["segment_hash"]
    assert after_attr != first
    after_store = api.patch("seg", store="play_store").json()["data"]["segment_hash"]
    assert after_store != after_attr
    assert api.patch("seg", ip_country="DE").json()["data"]["segment_hash"] != after_store


def test_country_codes_are_case_insensitive_and_stored_upper(api, runtime):
    assert api.create("fr", ip_country="fr").status_code == 200
    [row] = _stored(runtime, profiles, customer_user_id="fr")
    assert row["ip_country"] == "FR"


def test_non_ascii_customer_user_ids_in_headers(api):
    name = "jürgen/ñ?+ 東京"
    response = api.client.post(
        BASE + "/profile/",
        headers={"Authorization": f"Api-Key {api.secret}", "adapty-customer-user-id": name.encode()},
    )
    assert response.status_code == 200
    assert response.json()["data"]["customer_user_id"] == name
