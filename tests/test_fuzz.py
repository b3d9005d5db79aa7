"""Fuzz the API from its own OpenAPI document: no 500, and a rejected request changes nothing."""

import schemathesis
from conftest import db_snapshot, new_app
from hypothesis import HealthCheck, given, settings

from subledger.app import create_app


def test_no_generated_request_breaks_the_server_or_half_applies(runtime, client):
    api = new_app(runtime, client)
    api.create("known-user", custom_attributes=[{"key": "level", "value": 1}])
    api.access_level("premium")
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(runtime))
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10

    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=15, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        def check(case):
            before = db_snapshot(runtime)
            headers = {"adapty-customer-user-id": "known-user", **(case.headers or {}),
                       "Authorization": f"Api-Key {api.secret}"}
            response = case.call(headers=headers)
            assert response.status_code < 500, (case.method, case.path, response.text)
            if response.status_code >= 400:
                body = response.json()
                assert body["status_code"] == response.status_code and body["error_code"] and body["errors"]
                assert db_snapshot(runtime) == before, (case.method, case.path, case.body)

        check()
