"""A profile's integration identifiers: set, read, and carried where the reference carries them."""

import csv
import io

import pytest
from support.api import BASE
from support.database import db_snapshot
from support.serving import operator_env, run

PATH = BASE + "/integration/profile/set/integration-identifiers/"
# The contract's example of the POST.
EXAMPLE = {
    "pushwoosh_hwid": "example_pushwoosh_hwid",
    "mixpanel_user_id": "example_mixpanel_user_id",
    "facebook_anonymous_id": "example_facebook_anonymous_id",
    "firebase_app_instance_id": "example_firebase_app_instance_id",
    "amplitude_user_id": "example_amplitude_user_id",
    "amplitude_device_id": "example_amplitude_device_id",
    "appmetrica_device_id": "example_appmetrica_device_id",
    "appmetrica_profile_id": "example_appmetrica_profile_id",
    "one_signal_subscription_id": "example_one_signal_subscription_id",
    "one_signal_player_id": "example_one_signal_player_id",
    "branch_id": "example_branch_id",
    "appsflyer_id": "example_appsflyer_id",
    "adjust_device_id": "example_adjust_device_id",
    "airbridge_device_id": "example_airbridge_device_id",
    "tenjin_analytics_installation_id": "example_tenjin_analytics_installation_id",
    "posthog_distinct_user_id": "example_posthog_distinct_user_id",
}


@pytest.fixture
def env(runtime, database_url, tmp_path):
    return operator_env(tmp_path, database_url)


def ids(api, user="u"):
    return api.client.get(PATH, headers=api.headers(user))


def set_ids(api, body, user="u"):
    return api.client.post(PATH, json=body, headers=api.headers(user))


def test_the_contract_example_is_set_and_read_back(api):
    api.create("u")
    unset = ids(api)
    assert unset.status_code == 200 and unset.json() == dict.fromkeys(EXAMPLE) and len(unset.json()) == 16
    response = set_ids(api, EXAMPLE)
    assert (response.status_code, response.content) == (200, b"")
    assert ids(api).json() == EXAMPLE
    assert list(ids(api).json())[:3] == ["adjust_device_id", "airbridge_device_id", "amplitude_device_id"]


def test_the_ids_sent_replace_theirs_and_null_removes_one(api):
    api.create("u")
    set_ids(api, {"appsflyer_id": "af-1", "branch_id": "br-1"})
    assert set_ids(api, {"appsflyer_id": "af-2", "branch_id": None}).status_code == 200
    got = ids(api).json()
    assert (got["appsflyer_id"], got["branch_id"], got["mixpanel_user_id"]) == ("af-2", None, None)


@pytest.mark.parametrize(
    ("body", "code", "source"),
    [
        ({}, "validation_error", "non_field_errors"),
        ({"unknown_id": "x"}, "validation_error", "non_field_errors"),
        ({"appsflyer_id": 5}, "base_error", "appsflyer_id"),
        ({"appsflyer_id": "x" * 256}, "base_error", "appsflyer_id"),
    ],
)
def test_bad_bodies_are_400_and_change_nothing(api, runtime, body, code, source):
    api.create("u")
    set_ids(api, {"appsflyer_id": "kept"})
    before = db_snapshot(runtime)
    response = set_ids(api, body)
    assert response.status_code == 400
    assert (response.json()["error_code"], response.json()["errors"][0]["source"]) == (code, source)
    assert db_snapshot(runtime) == before


def test_an_unknown_profile_is_the_endpoints_own_404(api):
    for response in (ids(api, "nobody"), set_ids(api, EXAMPLE, "nobody")):
        assert response.status_code == 404
        assert response.json() == {
            "errors": [{"source": None, "errors": ["Profile not found"]}],
            "error_code": "profile_not_found",
            "status_code": 404,
        }


@pytest.mark.slow  # runs the command line in processes
def test_the_ids_travel_in_webhooks_v1_and_the_export(api, env):
    api.create("u")
    set_ids(api, {"appsflyer_id": "af-1", "firebase_app_instance_id": "fb-1"})
    api.patch("u", first_name="Ann")  # an event after the ids were set
    api.grant("u", access_level_id="premium")
    feed = api.client.get("/api/admin/v1/events/", headers=api.headers()).json()["data"]
    assert feed[-1]["payload"]["integration_ids"] == {"appsflyer_id": "af-1", "firebase_app_instance_id": "fb-1"}
    extended = api.client.get("/api/v1/sdk/profiles/u/", params={"extended": "1"}, headers=api.headers()).json()
    assert (extended["data"]["appsflyer_id"], extended["data"]["mixpanel_user_id"]) == ("af-1", None)
    exported = run(env, "export", "--app", api.app_id, "profiles", "--format", "csv").stdout
    [row] = csv.DictReader(io.StringIO(exported))
    assert (row["appsflyer_id"], row["firebase_app_instance_id"], row["branch_id"]) == ("af-1", "fb-1", "")
