"""The Web API's client, and an app that sells on the web."""

import json

import pytest

WEB = "/api/v2/web-api"


def web(api, path: str, body, origin: str | None = None, **headers):
    headers = {"Authorization": f"Api-Key {api.public}", **headers}
    if origin is not None:
        headers["Origin"] = origin
    content = json.dumps(body).encode() if not isinstance(body, bytes) else body
    return api.client.post(WEB + path, content=content, headers=headers)


@pytest.fixture
def shop(api, clock):
    """An app with a placement showing a paywall of App Store and Stripe products, and user123."""
    monthly = api.product("monthly", "premium", "P1M", title="1 month")
    weekly = api.product("weekly", "premium", "P1W", title="1 week")
    web_monthly = api.product("price_monthly", "premium", "P1M", store="stripe", title="Monthly on the web")
    products = [weekly["product_id"], monthly["product_id"], web_monthly["product_id"]]
    config = [{"locale": "en", "data": json.dumps({"default_product_number": 1, "soft_paywall": False})}]
    made = api.admin(
        "POST", "/paywalls/", {"title": "1 week + 1 month", "product_ids": products, "remote_configs": config}
    )
    api.paywall = made.json()["data"]
    body = {"placement_id": "PaywallPlacementId", "targets": [{"paywall_id": api.paywall["paywall_id"]}]}
    assert api.admin("PUT", "/placements/", body).status_code == 200
    assert api.create("user123").status_code == 200
    return api
