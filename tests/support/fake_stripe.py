"""A stand-in for Stripe's API on loopback: the few endpoints subledger reads, with fixtures."""

from urllib.parse import parse_qs, urlparse

from support.loopback import JsonHandler, LoopbackServer

DAY = 86400
START = 1735689600  # 2025-01-01T00:00:00Z
KEY = "sk_test_subledger"


def invoice(n: int, amount: int = 999, currency: str = "eur", subscription_id: str = "sub_1", **fields) -> dict:
    """The n-th monthly invoice of a subscription that started at START."""
    start = START + 30 * DAY * n
    return {
        "id": f"in_{n}",
        "object": "invoice",
        "status": "paid",
        "amount_paid": amount,
        "currency": currency,
        "created": start,
        "subscription": subscription_id,
        "billing_reason": "subscription_create" if n == 0 else "subscription_cycle",
        "lines": {
            "object": "list",
            "data": [
                {
                    "id": f"il_{n}",
                    "object": "line_item",
                    "period": {"start": start, "end": start + 30 * DAY},
                    "price": {"id": "price_monthly", "object": "price"},
                }
            ],
        },
        **fields,
    }


def subscription(subscription_id: str = "sub_1", **fields) -> dict:
    return {
        "id": subscription_id,
        "object": "subscription",
        "status": "active",
        "cancel_at_period_end": False,
        "canceled_at": None,
        "start_date": START,
        "trial_end": None,
        "livemode": False,
        "customer": "cus_1",
        "metadata": {},
        "items": {
            "object": "list",
            "data": [
                {"id": "si_1", "object": "subscription_item", "price": {"id": "price_monthly", "object": "price"}}
            ],
        },
        **fields,
    }


def payment_intent(intent_id: str = "pi_1", amount: int = 499, **fields) -> dict:
    """A succeeded payment intent in US dollars, made at START."""
    return {
        "id": intent_id,
        "object": "payment_intent",
        "status": "succeeded",
        "amount": amount,
        "amount_received": amount,
        "currency": "usd",
        "created": START,
        "livemode": True,
        "metadata": {},
        **fields,
    }


class FakeStripe(LoopbackServer):
    def __init__(self, secret_key: str):
        self.secret_key = secret_key
        self.objects: dict[str, dict] = {}  # "subscriptions/sub_1" -> object
        self.invoices: dict[str, list[dict]] = {}  # subscription id -> invoices, newest first
        self.requests: list[str] = []
        fake = self

        class Handler(JsonHandler):
            def do_GET(self):
                url = urlparse(self.path)
                fake.requests.append(self.path)
                if self.headers.get("Authorization") != f"Bearer {fake.secret_key}":
                    return self._send(401, {"error": {"type": "invalid_request_error", "message": "Invalid API Key"}})
                resource = url.path.removeprefix("/v1/")
                if resource == "invoices":
                    query = parse_qs(url.query)
                    invoices = fake.invoices.get(query["subscription"][0], [])
                    if "starting_after" in query:
                        after = [i["id"] for i in invoices].index(query["starting_after"][0])
                        invoices = invoices[after + 1 :]
                    limit = int(query.get("limit", ["10"])[0])
                    return self._send(
                        200,
                        {
                            "object": "list",
                            "url": "/v1/invoices",
                            "data": invoices[:limit],
                            "has_more": len(invoices) > limit,
                        },
                    )
                if resource in fake.objects:
                    return self._send(200, fake.objects[resource])
                return self._send(
                    404,
                    {
                        "error": {
                            "type": "invalid_request_error",
                            "code": "resource_missing",
                            "message": f"No such object: '{resource.split('/')[-1]}'",
                        }
                    },
                )

        super().__init__(Handler)
