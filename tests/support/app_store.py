"""The App Store's signed notifications and its stand-in."""

import uuid
from datetime import UTC, datetime

import pytest

from subledger.stores.apple import service as apple_service
from support.apple_signing import AppleChain

BUNDLE = "com.example.app"


DAY = 86_400_000


START = int(datetime(2025, 1, 1, tzinfo=UTC).timestamp() * 1000)


def transaction(n: int = 0, original: str = "1000", **fields) -> dict:
    """The n-th monthly transaction of a chain (n=0: the first purchase)."""
    purchased = START + 30 * DAY * n
    return {
        "transactionId": f"{original}{n:03d}" if n else original,
        "originalTransactionId": original,
        "webOrderLineItemId": f"w{n}",
        "bundleId": BUNDLE,
        "productId": "monthly",
        "subscriptionGroupIdentifier": "g1",
        "purchaseDate": purchased,
        "originalPurchaseDate": START,
        "expiresDate": purchased + 30 * DAY,
        "quantity": 1,
        "type": "Auto-Renewable Subscription",
        "inAppOwnershipType": "PURCHASED",
        "signedDate": purchased,
        "environment": "Sandbox",
        "transactionReason": "PURCHASE" if n == 0 else "RENEWAL",
        "storefront": "FRA",
        "storefrontId": "143442",
        "price": 9990,
        "currency": "EUR",
        **fields,
    }


def renewal(original: str = "1000", **fields) -> dict:
    return {
        "originalTransactionId": original,
        "autoRenewProductId": "monthly",
        "productId": "monthly",
        "autoRenewStatus": 1,
        "signedDate": START,
        "environment": "Sandbox",
        **fields,
    }


class AppStore:
    """Sends what the App Store sends, signed with ``chain``."""

    def __init__(self, api, chain: AppleChain):
        self.api = api
        self.chain = chain
        self.url = f"/stores/app-store/{api.app_id}/notifications/"

    def payload(self, kind: str, tx: dict | None, renewal_info: dict | None, signed: int, **extra) -> dict:
        notification_type, _, subtype = kind.partition("/")
        data = {"bundleId": BUNDLE, "bundleVersion": "1", "environment": "Sandbox", "status": 1}
        if tx is not None:
            data["signedTransactionInfo"] = self.chain.sign(tx)
        if renewal_info is not None:
            data["signedRenewalInfo"] = self.chain.sign(renewal_info)
        payload = {
            "notificationType": notification_type,
            "notificationUUID": str(uuid.uuid4()),
            "data": data,
            "version": "2.0",
            "signedDate": signed,
            **extra,
        }
        if subtype:
            payload["subtype"] = subtype
        return payload

    def send_payload(self, payload: dict, chain: AppleChain | None = None):
        return self.api.client.post(self.url, json={"signedPayload": (chain or self.chain).sign(payload)})

    def notify(self, kind: str, tx: dict | None = None, renewal_info: dict | None = None, signed: int | None = None):
        signed = signed if signed is not None else (tx or {}).get("signedDate", START)
        response = self.send_payload(self.payload(kind, tx, renewal_info, signed))
        assert response.status_code == 200, response.text
        return response.json()["status"]


@pytest.fixture
def chain():
    return AppleChain()


@pytest.fixture
def store(api, runtime, chain, clock):
    api.product("monthly", "premium", "P1M")
    api.product("yearly", "premium", "P1Y")
    api.product("lifetime", "premium", "lifetime")
    apple_service.configure(runtime, uuid.UUID(api.app_id), BUNDLE, 1234, [chain.root_pem])
    api.create("u1")
    clock.current = datetime(2025, 1, 10, tzinfo=UTC)
    return AppStore(api, chain)
