"""HTTP shape: trailing slashes, unknown paths, the OpenAPI document."""

import gc

from fastapi.testclient import TestClient
from support.api import BASE
from support.serving import free_port

from subledger.app import create_app
from subledger.config import Settings
from subledger.core.runtime import Runtime


def test_paths_without_the_trailing_slash_are_served_the_same(api):
    api.create("slash")
    with_slash = api.client.get(BASE + "/profile/", headers=api.headers("slash"))
    without = api.client.get(BASE + "/profile", headers=api.headers("slash"), follow_redirects=False)
    assert without.status_code == 200
    assert without.json()["data"]["profile_id"] == with_slash.json()["data"]["profile_id"]


def test_unknown_paths_and_methods_get_the_error_body(api):
    missing = api.client.get(BASE + "/nothing-here/", headers=api.headers())
    assert missing.status_code == 404
    assert missing.json()["error_code"] == "not_found" and missing.json()["status_code"] == 404
    wrong_method = api.client.put(BASE + "/profile/", headers=api.headers("x"))
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error_code"] == "method_not_allowed"


def test_openapi_document_describes_the_profile_endpoints(client):
    document = client.get("/openapi.json").json()
    operations = document["paths"]["/api/v2/server-side-api/profile/"]
    assert set(operations) == {"get", "post", "patch", "delete"}
    create = operations["post"]
    parameters = {parameter["name"] for parameter in create["parameters"]}
    assert {"authorization", "adapty-customer-user-id", "adapty-platform"} <= parameters
    body_schema = create["requestBody"]["content"]["application/json"]["schema"]
    assert "ProfileFields" in str(body_schema)
    fields = document["components"]["schemas"]["ProfileFields"]["properties"]
    assert {"first_name", "gender", "birthday", "custom_attributes", "installation_meta"} <= set(fields)
    assert set(create["responses"]) >= {"200", "400", "401"}


def test_a_database_out_of_reach_is_a_503_to_retry(tmp_path):
    """A server whose PostgreSQL does not answer (nothing listens on its port): every request
    that needs the database is answered at once, 503 with Retry-After, not 500."""
    settings = Settings(database_url=f"postgresql://postgres@127.0.0.1:{free_port()}/gone", data_dir=tmp_path)
    runtime = Runtime.from_settings(settings)
    try:
        with TestClient(create_app(runtime)) as client:
            for method, path in [("GET", BASE + "/profile/"), ("POST", BASE + "/profile/")]:
                answer = client.request(method, path, headers={"Authorization": "Api-Key secret_live_x"})
                assert answer.status_code == 503
                assert answer.json()["error_code"] == "database_unavailable"
                assert answer.headers["Retry-After"] == "1"
            assert client.get("/health").json()["status"] == "unavailable"
    finally:
        runtime.db.dispose()


def test_a_started_server_keeps_what_it_loaded_out_of_the_garbage_collectors_reach(client):
    """Full collections over everything loaded at start had stopped the process for tens of ms;
    afterwards they came after every tenth collection of the middle generation in an export."""
    assert gc.get_freeze_count() > 10_000
    assert gc.get_threshold()[2] == 1000
