"""The Export Analytics API (/api/v1/client-api/): what its operations share (the secret key, the
rate limit, Adapty-Tz, JSON or CSV) and the placements export, through HTTP on both engines."""

import csv
import io

import pytest
from support.paywalls import paywall, place

CLIENT_API = "/api/v1/client-api"
PLACEMENTS = CLIENT_API + "/exports/placements/"
EXAMPLE = {"filters": {"placement_type": "paywall"}}  # the document's example


def export(api, body=EXAMPLE, **headers):
    return api.client.post(PLACEMENTS, json=body, headers={**api.headers(), **headers})


@pytest.fixture
def placed(studio):  # noqa: F811
    """Two placements: one with an audience's paywall then everyone's A/B test, one plain."""
    onboarding, a, b = paywall(studio, "Onboarding"), paywall(studio, "Price A"), paywall(studio, "Price B")
    rule = {"field": "ip_country", "op": "eq", "value": "DE"}
    assert studio.admin("POST", "/audiences/", {"audience_id": "germany", "rules": [rule]}).status_code == 201
    variations = [{"paywall_id": p["paywall_id"], "weight": 50} for p in (a, b)]
    test = studio.admin("POST", "/ab-tests/", {"name": "Price test", "variations": variations}).json()["data"]
    place(
        studio,
        "settings",
        [{"audience_id": "germany", "paywall_id": a["paywall_id"]}, {"ab_test_id": test["ab_test_id"]}],
    )
    place(studio, "main", [{"paywall_id": onboarding["paywall_id"]}])
    return studio


def test_the_documents_example_lists_each_placements_paywalls(placed):
    answer = export(placed)
    assert answer.status_code == 200, answer.text
    row = {
        "developer_id": "settings",
        "placement_name": "settings",
        "cross_placement_ab_test_name": None,
    }
    assert answer.json() == {
        "data": [
            {
                **row,
                "developer_id": "main",
                "placement_name": "main",
                "audience_name": "All Users",
                "segment_name": "All Users",
                "ab_test_name": None,
                "paywall_name": "Onboarding",
            },
            {
                **row,
                "audience_name": "germany",
                "segment_name": "germany",
                "ab_test_name": None,
                "paywall_name": "Price A",
            },
            {
                **row,
                "audience_name": "All Users",
                "segment_name": "All Users",
                "ab_test_name": "Price test",
                "paywall_name": "Price A",
            },
            {
                **row,
                "audience_name": "All Users",
                "segment_name": "All Users",
                "ab_test_name": "Price test",
                "paywall_name": "Price B",
            },
        ]
    }
    assert export(placed, {"filters": {"placement_type": "onboarding"}}).json() == {"data": []}


def test_csv_by_the_body_or_the_accept_header(placed):
    for answer in (export(placed, {**EXAMPLE, "format": "csv"}), export(placed, Accept="text/csv")):
        assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(answer.text)))
        assert list(rows[0]) == [
            "developer_id",
            "placement_name",
            "audience_name",
            "segment_name",
            "cross_placement_ab_test_name",
            "ab_test_name",
            "paywall_name",
        ]
        assert [(r["developer_id"], r["ab_test_name"], r["paywall_name"]) for r in rows] == [
            ("main", "", "Onboarding"),
            ("settings", "", "Price A"),
            ("settings", "Price test", "Price A"),
            ("settings", "Price test", "Price B"),
        ]


@pytest.mark.parametrize(
    ("body", "code", "source"),
    [
        ({}, "base_error", "filters"),
        ({"filters": {}}, "base_error", "filters.placement_type"),
        ({"filters": {"placement_type": "banner"}}, "invalid_enumeration_member", "filters.placement_type"),
        ({**EXAMPLE, "format": "xml"}, "invalid_enumeration_member", "format"),
    ],
)
def test_bad_requests_are_400_in_the_error_format(api, body, code, source):
    answer = export(api, body)
    assert answer.status_code == 400
    assert answer.json()["error_code"] == code and answer.json()["errors"][0]["source"] == source


def test_the_time_zone_header_takes_iana_names(api):
    assert export(api, **{"Adapty-Tz": "Europe/Berlin"}).status_code == 200
    refused = export(api, **{"Adapty-Tz": "Mars/Olympus_Mons"})
    assert refused.status_code == 400 and refused.json()["error_code"] == "invalid_time_zone"


def test_the_secret_key_is_required_and_requests_are_limited_per_app(api, client):
    anonymous = client.post(PLACEMENTS, json=EXAMPLE)
    assert anonymous.status_code == 401 and anonymous.json()["error_code"] == "not_authenticated"
    public = client.post(PLACEMENTS, json=EXAMPLE, headers={"Authorization": f"Api-Key {api.public}"})
    assert public.status_code == 401
    answers = [export(api) for _ in range(3)]  # the clock stands still: two a second, two at once
    assert [answer.status_code for answer in answers] == [200, 200, 429]
    assert answers[-1].json()["error_code"] == "rate_limited" and int(answers[-1].headers["Retry-After"]) >= 1
