"""The dashboard's page of paywalls, placements, audiences and A/B tests, with their figures."""

import re
import uuid

from support.api import BASE
from support.dashboard import EMAIL, PASSWORD, sign_in
from support.paywalls import paywall, place
from support.purchases import subscription

from subledger.dashboard import service as dashboard_service
from subledger.paywalls import service as paywalls_service


def cells(html: str, table: str) -> list[list[str]]:
    """The rows of a table of the page, each cell's text without tags."""
    body = re.search(rf'<table class="{table}">.*?<tbody>(.*?)</tbody>', html, re.S).group(1)
    rows = re.findall(r"<tr>(.*?)</tr>", body, re.S)
    text = [re.findall(r"<td>(.*?)</td>", row, re.S) for row in rows]
    return [[re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", cell)).strip() for cell in row] for row in text]


def test_paywalls_placements_audiences_and_tests_with_their_figures(studio, client, runtime):
    dashboard_service.create_operator(runtime, EMAIL, PASSWORD)
    configs = [{"locale": "en", "data": '{"title": "Go"}'}, {"locale": "fr", "data": '{"title": "Allez"}'}]
    a = paywall(studio, "Annual first", products=("yearly", "monthly"), remote_configs=configs)
    b = paywall(studio, "Monthly only")
    audience = {"audience_id": "france", "rules": [{"field": "ip_country", "op": "eq", "value": "FR"}]}
    assert studio.admin("POST", "/audiences/", audience).status_code == 201
    variations = [{"paywall_id": a["paywall_id"], "weight": 70}, {"paywall_id": b["paywall_id"], "weight": 30}]
    test = studio.admin("POST", "/ab-tests/", {"name": "Price test", "variations": variations}).json()["data"]
    place(
        studio,
        "onboarding",
        [{"audience_id": "france", "paywall_id": a["paywall_id"]}, {"ab_test_id": test["ab_test_id"]}],
    )

    for user in ("pierre", "marie"):  # two French viewers of Annual first, shown alone; one buys
        studio.create(user, ip_country="FR")
        shown = studio.request("GET", "/placements/onboarding/paywall/", user).json()
        assert shown["paywall_id"] == a["paywall_id"] and "ab_test_name" not in shown
        view = {"paywall_id": shown["paywall_id"], "variation_id": shown["variation_id"]}
        assert (
            studio.client.post(
                f"{BASE}/placements/onboarding/views/", headers=studio.headers(user), json=view
            ).status_code
            == 204
        )
    studio.set_transaction("pierre", **subscription(variation_id=shown["variation_id"], store_product_id="yearly"))

    sign_in(client)
    html = client.get(f"/dashboard/apps/{studio.app_id}/paywalls/").text
    paywalls = cells(html, "paywalls")
    assert [row[0].split(" ")[0] for row in paywalls] == ["Annual", "Monthly"]
    annual = paywalls[0]
    assert annual[2:] == ["Yearly, Monthly", "en, fr", "2", "2", "1", "50.0%", "$9.99"]
    assert cells(html, "placements") == [["onboarding", "france → Annual first All Users → A/B test Price test"]]
    assert cells(html, "audiences") == [["france", "ip_country eq FR"]]
    price_test = cells(html, "ab-test")
    assert [row[0:2] for row in price_test] == [["Annual first", "70"], ["Monthly only", "30"]]
    assert price_test[0][-1] == "control" and price_test[1][-1] == "– (no views yet)"

    rows, every = paywalls_service.metrics_and_experiments(runtime, uuid.UUID(studio.app_id))
    alone = paywalls_service.ab_test_metrics(runtime, uuid.UUID(studio.app_id), uuid.UUID(test["ab_test_id"]))
    assert [test["variations"] for test in every] == [alone["variations"]]
    assert rows == paywalls_service.paywall_metrics(runtime, uuid.UUID(studio.app_id))


def test_an_app_without_paywalls_says_so(api, client, runtime):
    dashboard_service.create_operator(runtime, EMAIL, PASSWORD)
    sign_in(client)
    page = client.get(f"/dashboard/apps/{api.app_id}/paywalls/")
    assert page.status_code == 200 and page.text.count("None yet") == 4
