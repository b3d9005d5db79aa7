"""Paywalls and placements made through the admin API."""

import pytest


@pytest.fixture
def studio(api):
    monthly = api.product("monthly", "premium", "P1M", title="Monthly")
    yearly = api.product("yearly", "premium", "P1Y", title="Yearly")
    api.products = {"monthly": monthly["product_id"], "yearly": yearly["product_id"]}
    return api


def paywall(api, title, products=("monthly",), remote_configs=(), **extra) -> dict:
    body = {"title": title, "product_ids": [api.products[p] for p in products], "remote_configs": list(remote_configs)}
    response = api.admin("POST", "/paywalls/", {**body, **extra})
    assert response.status_code == 201, response.text
    return response.json()["data"]


def place(api, placement_id, targets) -> None:
    response = api.admin("PUT", "/placements/", {"placement_id": placement_id, "targets": targets})
    assert response.status_code == 200, response.text
