"""Virtual currency transactions through the API."""

import pytest

TRANSACTIONS = "/vc/transactions/"


def transact(api, body, user="u", **headers):
    return api.request("POST", TRANSACTIONS, user, json=body, headers=headers)


def error(response, status: int, code: str):
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error_code"] == code and body["status_code"] == status
    assert body["errors"] and all(item["errors"] for item in body["errors"])


@pytest.fixture
def wallet(api):
    """An app with virtual currencies on, four currencies, and a profile `u`."""
    assert api.admin("PATCH", "/virtual-currencies/", {"enabled": True}).status_code == 200
    for code, name in [("COINS", "Gold Coins"), ("GOLD", "Gold"), ("SILVER", "Silver"), ("GEMS", "Gems")]:
        assert api.admin("POST", "/virtual-currencies/currencies/", {"code": code, "name": name}).status_code == 201
    assert api.create("u").status_code == 200
    return api
