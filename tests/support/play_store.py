"""Google Play's stand-in and its purchases."""

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from subledger.stores.google import service as google_service
from support.fake_google import PACKAGE, FakeGoogle

START = datetime(2025, 1, 1, tzinfo=UTC)


DAY = timedelta(days=1)


VALIDATE = "/purchase/play-store/token/validate/"


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def purchase(
    order="GPA.1", state="SUBSCRIPTION_STATE_ACTIVE", expiry=START + 30 * DAY, auto=True, account="u1", **extra
):
    """A subscriptionsv2 purchase as the Play Developer API describes it."""
    return {
        "kind": "androidpublisher#subscriptionPurchaseV2",
        "regionCode": "DE",
        "startTime": iso(START),
        "subscriptionState": state,
        "latestOrderId": order,
        "acknowledgementState": "ACKNOWLEDGEMENT_STATE_PENDING",
        "externalAccountIdentifiers": {"obfuscatedExternalAccountId": account},
        "lineItems": [
            {
                "productId": "monthly",
                "expiryTime": iso(expiry),
                "autoRenewingPlan": {
                    "autoRenewEnabled": auto,
                    "recurringPrice": {"currencyCode": "EUR", "units": "4", "nanos": 990000000},
                },
                "offerDetails": {"basePlanId": "p1m"},
            }
        ],
        **extra,
    }


class Play:
    def __init__(self, api, fake: FakeGoogle, path: str):
        self.api = api
        self.fake = fake
        self.path = path

    def push(self, data: dict, message_id: str | None = None, path: str | None = None, headers: dict | None = None):
        body = {
            "message": {
                "data": base64.b64encode(json.dumps(data).encode()).decode(),
                "messageId": message_id or str(uuid.uuid4()),
                "publishTime": "2025-01-01T00:00:00Z",
            },
            "subscription": "projects/p/subscriptions/play",
        }
        return self.api.client.post(path or self.path, json=body, headers=headers)

    def notify(self, kind: int, token: str = "tok1", at: datetime = START, message_id: str | None = None) -> str:
        data = {
            "version": "1.0",
            "packageName": PACKAGE,
            "eventTimeMillis": str(int(at.timestamp() * 1000)),
            "subscriptionNotification": {"version": "1.0", "notificationType": kind, "purchaseToken": token},
        }
        response = self.push(data, message_id)
        assert response.status_code == 200, response.text
        return response.json()["status"]

    def notify_other(self, field: str, body: dict, at: datetime = START):
        data = {
            "version": "1.0",
            "packageName": PACKAGE,
            "eventTimeMillis": str(int(at.timestamp() * 1000)),
            field: body,
        }
        response = self.push(data)
        assert response.status_code == 200, response.text
        return response.json()["status"]


@pytest.fixture
def play(api, runtime, clock):
    api.product("monthly", "premium", "P1M", store="play_store")
    api.product("coins", None, "lifetime", store="play_store", is_consumable=True)
    api.create("u1")
    clock.current = datetime(2025, 1, 10, tzinfo=UTC)
    with FakeGoogle() as fake:
        runtime.settings.google_play_api_base = fake.url
        app_id = uuid.UUID(api.app_id)
        google_service.configure(runtime, app_id, PACKAGE, fake.service_account())
        yield Play(api, fake, google_service.push_path(runtime, app_id))
