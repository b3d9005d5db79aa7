"""The dashboard's customers list: filters, statuses and paging through HTTP, and its rules."""

import re
from urllib.parse import parse_qsl

import pytest
from support.dashboard import EMAIL, PASSWORD, sign_in
from support.purchases import subscription

from subledger.dashboard import customers
from subledger.dashboard import service as dashboard_service

TRIAL = {"category": "introductory", "type": "free_trial", "id": "week_free"}


@pytest.fixture
def shop(api, runtime, client, clock):
    """Five customers, made in this order (the list shows the newest first)."""
    dashboard_service.create_operator(runtime, EMAIL, PASSWORD)
    api.product("monthly", "premium", "P1M")
    for user, fields in (
        ("dave", {}),  # never bought anything
        ("carol", {"ip_country": "FR"}),  # paid, and it ended
        ("bob", {}),  # in a free trial
        ("alice", {"store": "app_store"}),  # paying now
        ("eve", {"store": "play_store", "ip_country": "DE"}),  # her trial ended, never paid
    ):
        assert api.create(user, **fields).status_code == 200
        clock.advance(minutes=1)
    bodies = {
        "carol": subscription(store_transaction_id="c1", store_original_transaction_id="c1",
                              purchased_at="2024-11-01T00:00:00Z", originally_purchased_at="2024-11-01T00:00:00Z",
                              expires_at="2024-12-01T00:00:00Z"),
        "bob": subscription(store_transaction_id="b1", store_original_transaction_id="b1", offer=TRIAL,
                            price={"country": "US", "currency": "USD", "value": 0}),
        "alice": subscription(store_transaction_id="a1", store_original_transaction_id="a1"),
        "eve": subscription(store_transaction_id="e1", store_original_transaction_id="e1", offer=TRIAL,
                            purchased_at="2024-11-01T00:00:00Z", originally_purchased_at="2024-11-01T00:00:00Z",
                            expires_at="2024-11-08T00:00:00Z"),
    }  # fmt: skip
    for user, body in bodies.items():
        assert api.set_transaction(user, **body).status_code == 200, user
    sign_in(client)
    return api


def listed(client, api, **query) -> tuple[list[list[str]], dict | None]:
    """The list's rows (customer, store, country, levels, status) and its next page's query."""
    answer = client.get(f"/dashboard/apps/{api.app_id}/profiles/", params=query)
    assert answer.status_code == 200
    body = re.search(r'<table class="customers">.*?<tbody>(.*?)</tbody>', answer.text, re.S)
    rows = re.findall(r"<tr>(.*?)</tr>", body.group(1), re.S) if body else []
    cells = [[re.sub(r"<[^>]+>", "", cell) for cell in re.findall(r"<td>(.*?)</td>", row, re.S)] for row in rows]
    more = re.search(r'<a class="next" href="\?([^"]+)"', answer.text)
    following = dict(parse_qsl(more.group(1).replace("&amp;", "&"))) if more else None
    return [[row[0], row[2], row[3], row[4], row[5]] for row in cells], following


def test_every_customer_newest_first_with_their_levels_and_status(shop, client):
    rows, more = listed(client, shop)
    assert rows == [
        ["eve", "play_store", "DE", "–", "–"],
        ["alice", "app_store", "–", "premium", "subscribed"],
        ["bob", "–", "–", "premium", "trial"],
        ["carol", "–", "FR", "–", "churned"],
        ["dave", "–", "–", "–", "–"],
    ]
    assert more is None


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ({"level": "premium"}, ["alice", "bob"]),
        ({"status": "trial"}, ["bob"]),
        ({"status": "subscribed"}, ["alice"]),
        ({"status": "churned"}, ["carol"]),
        ({"store": "play_store"}, ["eve"]),
        ({"country": "de"}, ["eve"]),
        ({"country": "fr", "status": "churned"}, ["carol"]),
        ({"level": "premium", "status": "trial"}, ["bob"]),
        ({"store": "app_store", "status": "trial"}, []),
    ],
)
def test_filters(shop, client, query, names):
    rows, _ = listed(client, shop, **query)
    assert [row[0] for row in rows] == names


def test_pages_follow_one_another_and_a_rare_filter_looks_further(shop, client, monkeypatch):
    monkeypatch.setattr(dashboard_service, "CUSTOMERS_PAGE", 2)
    seen, query = [], {}
    while True:
        rows, more = listed(client, shop, **query)
        seen.append([row[0] for row in rows])
        if more is None:
            break
        query = more
    assert seen == [["eve", "alice"], ["bob", "carol"], ["dave"]]

    monkeypatch.setattr(dashboard_service, "CUSTOMERS_SCAN", 2)
    monkeypatch.setattr(dashboard_service, "_CUSTOMERS_BATCH", 1)
    first, more = listed(client, shop, status="churned")
    assert first == [] and more is not None  # read eve and alice, none churned: offers to look further
    second, _ = listed(client, shop, **more)
    assert [row[0] for row in second] == ["carol"]


def test_a_place_in_the_list_that_is_not_one_is_refused(shop, client):
    answer = client.get(f"/dashboard/apps/{shop.app_id}/profiles/", params={"after": "yesterday~nobody"})
    assert answer.status_code == 400


def test_a_trial_carrying_the_price_after_it_is_not_a_payment():
    now = "2025-06-01T00:00:00.000000+0000"
    expired_trial = {
        "purchased_at": "2025-01-01T00:00:00.000000+0000",
        "expires_at": "2025-01-08T00:00:00.000000+0000",
        "refunded_at": None,
        "offer": TRIAL,
        "price": {"value": 4.99},
    }
    assert customers.status_of({"subscriptions": [expired_trial]}, now) == ""
    assert customers.status_of({"subscriptions": [{**expired_trial, "offer": None}]}, now) == "churned"
    refunded = {**expired_trial, "expires_at": "2025-12-01T00:00:00.000000+0000", "refunded_at": now, "offer": None}
    assert customers.status_of({"subscriptions": [refunded]}, now) == "churned"
    assert customers.status_of(None, now) == ""


def found(client, api, q) -> list[str] | str:
    """The customer_user_ids a search lists, or the profile it went straight to."""
    answer = client.get(f"/dashboard/apps/{api.app_id}/profiles/", params={"q": q}, follow_redirects=False)
    if answer.status_code == 303:
        return answer.headers["location"].rstrip("/").rsplit("/", 1)[-1]
    assert answer.status_code == 200
    body = re.search(r'<table class="found">.*?<tbody>(.*?)</tbody>', answer.text, re.S)
    return re.findall(r'<tr><td><a href="[^"]+">([^<]*)</a>', body.group(1)) if body else []


def test_a_search_finds_customers_by_the_start_of_their_id_or_email(api, client, runtime):
    dashboard_service.create_operator(runtime, EMAIL, PASSWORD)
    for user, email in (("annabel", "belle@example.com"), ("anna", None), ("anné", None), ("zed", "annex@example.com"),
                        ("bo", "bo@example.com"), ("ANNA", None)):  # fmt: skip
        assert api.create(user.encode(), email=email).status_code == 200  # the header's UTF-8
    sign_in(client)
    # customer_user_ids in byte order, then emails; a prefix is cased as typed (an email also in lower case)
    assert found(client, api, "ann") == ["anna", "annabel", "anné", "zed"]
    assert found(client, api, "anna") == ["anna", "annabel"]
    annabel = api.get("annabel").json()["data"]["profile_id"]
    assert found(client, api, "annab") == found(client, api, "Belle@") == annabel  # one: straight to it
    assert found(client, api, "ANN") == ["ANNA", "zed"]  # zed by annex@, lowered
    assert found(client, api, "annz") == []


@pytest.mark.parametrize(
    ("prefix", "matches"),
    [("a\U0010ffff", ["a\U0010ffff", "a\U0010ffffz"]), ("x\ud7ff", ["x\ud7ff", "x\ud7ffy"])],
)
def test_a_prefix_ending_in_the_last_character_before_a_gap_still_bounds_its_range(
    api, client, runtime, prefix, matches
):
    """The range's upper end is the prefix's last character plus one: after U+10FFFF there is
    none, and after U+D7FF come the surrogates, which UTF-8 cannot hold."""
    dashboard_service.create_operator(runtime, EMAIL, PASSWORD)
    for user in (*matches, "b", "x\ue000", "a"):
        assert api.create(user.encode()).status_code == 200, user
    sign_in(client)
    assert found(client, api, prefix) == matches
