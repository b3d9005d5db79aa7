"""A stand-in for Paddle Billing's API on loopback: the reads subledger makes, with fixtures in
Paddle's shapes (amounts in cents as strings, RFC 3339 times, lists with cursor pagination)."""

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlencode, urlparse

from support.loopback import JsonHandler, LoopbackServer

KEY = "pdl_sdbx_apikey_subledger"
START = datetime(2025, 1, 1, tzinfo=UTC)


def at(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def item(price_id: str = "pri_monthly", trial_days: int | None = None) -> dict:
    trial = {"interval": "day", "frequency": trial_days} if trial_days else None
    billing = {"interval": "month", "frequency": 1}
    return {"price": {"id": price_id, "product_id": "pro_1", "billing_cycle": billing, "trial_period": trial}}


def transaction(n: int, total: int = 999, subscription_id: str | None = "sub_1", **fields) -> dict:
    """The n-th monthly transaction of a subscription that started at START (or a one-time one)."""
    start = START + timedelta(days=30 * n)
    return {
        "id": f"txn_{n}",
        "status": "completed",
        "customer_id": "ctm_1",
        "subscription_id": subscription_id,
        "currency_code": "USD",
        "origin": "web" if n == 0 else "subscription_recurring",
        "custom_data": None,
        "items": [item()],
        "details": {"totals": {"subtotal": str(total), "tax": "0", "total": str(total), "grand_total": str(total)}},
        "billing_period": {"starts_at": at(start), "ends_at": at(start + timedelta(days=30))}
        if subscription_id
        else None,
        "billed_at": at(start),
        "created_at": at(start),
        "updated_at": at(start),
        "address": {"country_code": "DE"},
        **fields,
    }


def subscription(subscription_id: str = "sub_1", **fields) -> dict:
    return {
        "id": subscription_id,
        "status": "active",
        "customer_id": "ctm_1",
        "currency_code": "USD",
        "custom_data": None,
        "items": [{"status": "active", **item()}],
        "created_at": at(START),
        "started_at": at(START),
        "first_billed_at": at(START),
        "updated_at": at(START),
        "canceled_at": None,
        "scheduled_change": None,
        **fields,
    }


def refund(transaction_id: str, when: datetime, action: str = "refund") -> dict:
    return {
        "id": f"adj_{transaction_id}",
        "action": action,
        "type": "full",
        "status": "approved",
        "transaction_id": transaction_id,
        "subscription_id": "sub_1",
        "created_at": at(when),
        "updated_at": at(when),
    }


class FakePaddle(LoopbackServer):
    def __init__(self, api_key: str, page_size: int | None = None):
        self.api_key = api_key
        self.page_size = page_size  # at most this many a page, whatever per_page asks
        self.objects: dict[str, dict] = {}  # "subscriptions/sub_1" -> its data
        self.transactions: list[dict] = []  # for the transaction list
        self.adjustments: list[dict] = []
        self.requests: list[str] = []
        fake = self

        class Handler(JsonHandler):
            def do_GET(self):
                url = urlparse(self.path)
                fake.requests.append(self.path)
                if self.headers.get("Authorization") != f"Bearer {fake.api_key}":
                    error = {"type": "request_error", "code": "forbidden", "detail": "You aren't permitted"}
                    return self._send(403, {"error": error})
                resource = url.path.strip("/")
                query = {name: values[0] for name, values in parse_qs(url.query).items()}
                if resource in ("transactions", "adjustments"):
                    listed = fake.transactions if resource == "transactions" else fake.adjustments
                    return self._send(200, fake.page(resource, listed, query))
                if resource in fake.objects:
                    return self._send(200, {"data": fake.objects[resource]})
                error = {"type": "request_error", "code": "entity_not_found", "detail": f"{resource} not found"}
                return self._send(404, {"error": error})

        super().__init__(Handler)

    def page(self, resource: str, listed: list[dict], query: dict[str, str]) -> dict:
        """A page of a list filtered as Paddle filters it, with Paddle's cursor pagination."""
        found = [
            row
            for row in listed
            if all(row.get(name) == query[name] for name in ("subscription_id", "transaction_id") if name in query)
        ]
        if "after" in query:
            found = found[[row["id"] for row in found].index(query["after"]) + 1 :]
        size = min(int(query.get("per_page", "50")), self.page_size or 200)
        more = len(found) > size
        following = {**query, "after": found[size - 1]["id"]} if more else None
        pagination = {
            "per_page": size,
            "has_more": more,
            "next": f"https://api.paddle.com/{resource}?{urlencode(following)}" if following else None,
        }
        return {"data": found[:size], "meta": {"pagination": pagination}}
