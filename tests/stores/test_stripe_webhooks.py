"""Stripe webhooks: signed with a test secret, verified by the stripe library, the objects
read back from a Stripe stand-in on loopback with the real client, down to the profile."""

import hashlib
import hmac
import json
import time
import uuid

import pytest
from support.database import all_but_the_audit_log, db_snapshot
from support.fake_stripe import DAY, KEY, START, FakeStripe, invoice, payment_intent, subscription

from subledger.stores import service as stores_service
from subledger.stores.stripe import service as stripe_service

WEBHOOK_SECRET = "whsec_test_subledger"


def when(seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000000+00:00", time.gmtime(seconds))


def signature(payload: bytes, secret: str = WEBHOOK_SECRET, at: int | None = None) -> str:
    at = int(time.time()) if at is None else at
    digest = hmac.new(secret.encode(), f"{at}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={at},v1={digest}"


class Stripe:
    def __init__(self, api, fake: FakeStripe):
        self.api = api
        self.fake = fake
        self.url = f"/stores/stripe/{api.app_id}/webhook/"

    def post(self, event: dict, **sign):
        payload = json.dumps(event).encode()
        headers = {"Stripe-Signature": signature(payload, **sign), "Content-Type": "application/json"}
        return self.api.client.post(self.url, content=payload, headers=headers)

    def send(self, kind: str, obj: dict, created: int = START, event_id: str | None = None) -> str:
        event = {
            "id": event_id or f"evt_{uuid.uuid4().hex}",
            "object": "event",
            "type": kind,
            "created": created,
            "livemode": False,
            "data": {"object": obj},
        }
        response = self.post(event)
        assert response.status_code == 200, response.text
        return response.json()["status"]


@pytest.fixture
def stripe(api, runtime, clock):
    api.product("price_monthly", "premium", "P1M", store="stripe")
    api.product("coins", None, "lifetime", store="stripe", is_consumable=True)
    api.create("u1")
    clock.current = clock.current.replace(year=2025, month=1, day=20)
    with FakeStripe(KEY) as fake:
        runtime.settings.stripe_api_base = fake.url
        stripe_service.configure(runtime, uuid.UUID(api.app_id), secret_key=KEY, webhook_secret=WEBHOOK_SECRET)
        fake.objects["customers/cus_1"] = {"id": "cus_1", "object": "customer", "metadata": {"customer_user_id": "u1"}}
        fake.objects["subscriptions/sub_1"] = subscription()
        fake.invoices["sub_1"] = [invoice(0)]
        yield Stripe(api, fake)


def profile(api, user: str = "u1") -> dict:
    response = api.get(user)
    assert response.status_code == 200, response.text
    return response.json()["data"]


def sub(api, user: str = "u1") -> dict:
    [found] = profile(api, user)["subscriptions"]
    return found


def test_a_new_subscription_is_linked_by_the_customers_metadata(stripe, api):
    assert stripe.send("customer.subscription.created", subscription()) == "applied"
    found = sub(api)
    assert found["store"] == "stripe" and found["store_transaction_id"] == "in_0"
    assert found["store_original_transaction_id"] == "sub_1" and found["renew_status"] is True
    assert found["price"] == {"country": "US", "currency": "EUR", "value": 9.99}
    assert profile(api)["access_levels"][0]["expires_at"] == when(START + 30 * DAY)


def test_metadata_on_the_subscription_wins(stripe, api):
    api.create("u2")
    stripe.fake.objects["subscriptions/sub_1"] = subscription(metadata={"customer_user_id": "u2"})
    stripe.send("customer.subscription.created", subscription())
    assert sub(api, "u2")["store_original_transaction_id"] == "sub_1"
    assert profile(api)["subscriptions"] == []


def test_a_paid_renewal_invoice_extends_access(stripe, api, clock):
    stripe.send("customer.subscription.created", subscription())
    stripe.fake.invoices["sub_1"] = [invoice(1), invoice(0)]
    assert stripe.send("invoice.paid", invoice(1), created=START + 30 * DAY) == "applied"
    clock.current = clock.current.replace(month=2, day=5)
    assert sub(api)["store_transaction_id"] == "in_1"
    assert profile(api)["access_levels"][0]["expires_at"] == when(START + 60 * DAY)


def test_cancel_at_period_end_stops_renewal(stripe, api):
    stripe.send("customer.subscription.created", subscription())
    cancelled = subscription(cancel_at_period_end=True, canceled_at=START + 2 * DAY)
    stripe.fake.objects["subscriptions/sub_1"] = cancelled
    assert stripe.send("customer.subscription.updated", cancelled, created=START + 2 * DAY) == "applied"
    found = sub(api)
    assert found["renew_status"] is False and found["renew_status_changed_at"] == when(START + 2 * DAY)


def test_a_failed_payment_is_a_billing_issue(stripe, api):
    stripe.send("customer.subscription.created", subscription())
    failed = invoice(1, status="open", amount_paid=0)
    stripe.fake.invoices["sub_1"] = [failed, invoice(0)]
    stripe.fake.objects["subscriptions/sub_1"] = subscription(status="past_due")
    assert stripe.send("invoice.payment_failed", failed, created=START + 30 * DAY + 60) == "applied"
    found = sub(api)
    assert found["billing_issue_detected_at"] == when(START + 30 * DAY) and found["renew_status"] is True


def test_a_deleted_subscription_does_not_renew(stripe, api):
    stripe.send("customer.subscription.created", subscription())
    ended = subscription(status="canceled", canceled_at=START + 10 * DAY)
    stripe.fake.objects["subscriptions/sub_1"] = ended
    assert stripe.send("customer.subscription.deleted", ended, created=START + 10 * DAY) == "applied"
    assert sub(api)["renew_status"] is False


def test_a_refunded_charge_refunds_its_invoice(stripe, api):
    stripe.send("customer.subscription.created", subscription())
    stripe.fake.objects["invoices/in_0"] = invoice(0)
    charge = {
        "id": "ch_1",
        "object": "charge",
        "refunded": True,
        "invoice": "in_0",
        "customer": "cus_1",
        "refunds": {"object": "list", "data": [{"id": "re_1", "created": START + 3 * DAY}]},
    }
    assert stripe.send("charge.refunded", charge, created=START + 3 * DAY + 5) == "applied"
    found = sub(api)
    assert found["refunded_at"] == when(START + 3 * DAY) and found["cancellation_reason"] == "refund"
    # A later sync of the subscription keeps the refund (Stripe's invoice still says paid).
    stripe.send("customer.subscription.updated", subscription(), created=START + 4 * DAY)
    assert sub(api)["refunded_at"] == when(START + 3 * DAY)


def test_a_partial_refund_changes_nothing(stripe, api):
    stripe.send("customer.subscription.created", subscription())
    charge = {"id": "ch_1", "object": "charge", "refunded": False, "amount_refunded": 100, "invoice": "in_0"}
    assert stripe.send("charge.refunded", charge) == "ignored"
    assert sub(api)["refunded_at"] is None


def test_a_succeeded_payment_intent_is_a_one_time_purchase(stripe, api):
    intent = payment_intent(customer="cus_1", metadata={"product_id": "coins"})
    assert stripe.send("payment_intent.succeeded", intent) == "applied"
    [bought] = profile(api)["non_subscriptions"]
    assert bought["store_transaction_id"] == "pi_1" and bought["environment"] == "Production"
    # An invoice's payment intent is the subscription's business, not a purchase of its own; without
    # a product in its metadata (recent API versions do not name the invoice) it is taken for one.
    assert stripe.send("payment_intent.succeeded", {**intent, "id": "pi_2", "invoice": "in_0"}) == "ignored"
    assert stripe.send("payment_intent.succeeded", {**intent, "id": "pi_3", "metadata": {}}) == "ignored"
    assert len(profile(api)["non_subscriptions"]) == 1


def test_other_events_are_recorded_and_ignored(stripe, api):
    assert stripe.send("customer.created", {"id": "cus_9", "object": "customer"}) == "ignored"
    assert profile(api)["subscriptions"] == []


def test_a_replayed_event_changes_nothing(stripe, api, runtime):
    assert stripe.send("customer.subscription.created", subscription(), event_id="evt_1") == "applied"
    before = db_snapshot(runtime)
    assert stripe.send("customer.subscription.created", subscription(), event_id="evt_1") == "duplicate"
    assert db_snapshot(runtime) == before


def test_bad_signatures_are_refused_logged_and_change_nothing(stripe, api, runtime):
    before = all_but_the_audit_log(runtime)
    event = {"id": "evt_x", "type": "customer.subscription.created", "created": START, "data": {"object": {}}}
    assert stripe.post(event, secret="whsec_guess").status_code == 400
    assert stripe.post(event, at=int(time.time()) - 3600).status_code == 400  # too old: a replay
    unsigned = api.client.post(stripe.url, content=json.dumps(event).encode())
    assert unsigned.status_code == 400 and unsigned.json()["error_code"] == "notification_not_verified"
    payload = json.dumps(event).encode()
    tampered = payload.replace(b"evt_x", b"evt_y")
    response = api.client.post(stripe.url, content=tampered, headers={"Stripe-Signature": signature(payload)})
    assert response.status_code == 400
    assert all_but_the_audit_log(runtime) == before
    refused = api.admin("GET", "/store-notifications/refused/").json()["data"]
    assert len(refused) == 4 and all("signature" in row["reason"].lower() for row in refused)


def test_signed_events_not_as_stripe_documents_them_are_refused(stripe, api, runtime):
    """Signed with the app's secret, so not forged: still never a 500, and nothing changes."""
    before = all_but_the_audit_log(runtime)
    past_9999 = {"id": "evt_far", "type": "customer.subscription.created", "created": 10**20, "data": {"object": {}}}
    assert stripe.post(past_9999).status_code == 400
    for payload in (b"[]", b'{"id": "evt_odd", "type": "payment_intent.succeeded", "created": 1, "data": 5}'):
        headers = {"Stripe-Signature": signature(payload), "Content-Type": "application/json"}
        response = api.client.post(stripe.url, content=payload, headers=headers)
        assert response.status_code == 400 and response.json()["error_code"] == "notification_not_verified"
    assert all_but_the_audit_log(runtime) == before


def test_a_customer_user_id_longer_than_any_names_nobody(stripe, api):
    stripe.fake.objects["customers/cus_1"]["metadata"] = {"customer_user_id": "u" * 300}
    assert stripe.send("customer.subscription.created", subscription()) == "pending"
    assert profile(api)["subscriptions"] == []


def test_stripe_unavailable_answers_502_so_stripe_retries(stripe, api, runtime):
    stripe.fake.objects.pop("subscriptions/sub_1")
    stripe_service.configure(runtime, uuid.UUID(api.app_id), secret_key="sk_test_wrong")
    event = {
        "id": "evt_1",
        "type": "customer.subscription.created",
        "created": START,
        "data": {"object": subscription()},
    }
    assert stripe.post(event).status_code == 502
    assert profile(api)["subscriptions"] == []


def test_a_subscription_for_an_unknown_user_waits_for_the_profile(stripe, api, runtime):
    stripe.fake.objects["customers/cus_1"]["metadata"] = {"customer_user_id": "later"}
    assert stripe.send("customer.subscription.created", subscription()) == "pending"
    api.create("later")
    assert stores_service.apply_pending(runtime) == 1
    assert sub(api, "later")["store_transaction_id"] == "in_0"


def test_a_signed_event_of_an_unknown_shape_is_refused_not_a_crash(stripe, api):
    event = {"id": "evt_odd", "type": "charge.refunded", "created": START, "data": {"object": {"refunded": True}}}
    assert stripe.post({**event, "data": {}}).status_code == 400
    expanded = {"id": "ch_1", "refunded": True, "invoice": None, "payment_intent": {"id": "pi_9"}, "customer": None}
    assert stripe.send("charge.refunded", expanded) == "pending"  # nobody holds pi_9 yet


def session(**fields) -> dict:
    return {
        "id": "cs_1",
        "object": "checkout.session",
        "mode": "subscription",
        "payment_status": "paid",
        "subscription": "sub_1",
        "payment_intent": None,
        "customer": "cus_1",
        "customer_details": {"email": None},
        "client_reference_id": None,
        "metadata": {},
        **fields,
    }


def test_a_payment_link_names_its_user_by_client_reference_id(stripe, api, runtime):
    stripe_service.configure(runtime, uuid.UUID(api.app_id), profile_source="client_reference_id")
    api.create("link-user")
    stripe.fake.objects["customers/cus_1"]["metadata"] = {}
    # Before the session, the subscription's own events name nobody: they wait for its chain.
    assert stripe.send("customer.subscription.created", subscription()) == "pending"
    assert stripe.send("checkout.session.completed", session(client_reference_id="link-user")) == "applied"
    assert sub(api, "link-user")["store_original_transaction_id"] == "sub_1"
    # One source for the whole app, no fallback: metadata names nobody now.
    other = session(id="cs_2", subscription="sub_2", metadata={"customer_user_id": "u1"})
    stripe.fake.objects["subscriptions/sub_2"] = subscription("sub_2")
    stripe.fake.invoices["sub_2"] = [invoice(0, subscription_id="sub_2", id="in_20")]
    assert stripe.send("checkout.session.completed", other) == "pending"


def test_a_paid_checkout_session_in_payment_mode_is_a_one_time_purchase(stripe, api):
    stripe.fake.objects["payment_intents/pi_7"] = payment_intent("pi_7", livemode=False)
    stripe.fake.objects["checkout/sessions/cs_7/line_items"] = {
        "object": "list",
        "url": "/v1/checkout/sessions/cs_7/line_items",
        "has_more": False,
        "data": [{"id": "li_1", "object": "item", "price": {"id": "coins", "object": "price"}}],
    }
    paid = session(id="cs_7", mode="payment", subscription=None, payment_intent="pi_7")
    assert stripe.send("checkout.session.completed", paid) == "applied"  # u1: the customer's metadata
    [bought] = profile(api)["non_subscriptions"]
    assert (bought["store_product_id"], bought["store_transaction_id"]) == ("coins", "pi_7")
    unpaid = session(id="cs_8", mode="payment", subscription=None, payment_intent="pi_8", payment_status="unpaid")
    assert stripe.send("checkout.session.completed", unpaid) == "ignored"


def test_the_customers_email_as_the_profile(stripe, api, runtime):
    stripe_service.configure(runtime, uuid.UUID(api.app_id), profile_source="email")
    api.create("jane@example.com")
    stripe.fake.objects["customers/cus_1"]["email"] = "jane@example.com"
    assert stripe.send("customer.subscription.created", subscription()) == "applied"
    assert sub(api, "jane@example.com")["store_original_transaction_id"] == "sub_1"
    assert profile(api, "u1")["subscriptions"] == []  # the metadata is not read


def test_test_and_live_mode_keys(stripe, api, runtime):
    stripe_service.configure(
        runtime,
        uuid.UUID(api.app_id),
        secret_key="sk_live_other_account",
        webhook_secret="whsec_live",
        test_secret_key=KEY,
        test_webhook_secret=WEBHOOK_SECRET,
    )
    # A test mode event, signed with the test endpoint's secret, is read with the test key.
    assert stripe.send("customer.subscription.created", subscription()) == "applied"
    assert sub(api)["environment"] == "Sandbox"
    # A live event is read with the live key, which this stand-in does not take: Stripe retries.
    live = {"id": "evt_live", "type": "customer.subscription.updated", "created": START, "livemode": True}
    assert stripe.post({**live, "data": {"object": subscription()}}, secret="whsec_live").status_code == 502


def test_an_object_stripe_does_not_have_is_refused_not_retried(stripe, api, runtime):
    before = {table: db_snapshot(runtime)[table] for table in ("transactions", "store_notifications")}
    event = {"id": "evt_gone", "type": "customer.subscription.updated", "created": START, "livemode": False}
    response = stripe.post({**event, "data": {"object": subscription("sub_gone")}})
    assert response.status_code == 400 and response.json()["error_code"] == "notification_not_verified"
    assert {table: db_snapshot(runtime)[table] for table in before} == before
    [logged] = api.admin("GET", "/store-notifications/refused/").json()["data"]
    assert "no such object" in logged["reason"].lower()


def test_a_sessions_subscription_names_its_user_before_their_customer(stripe, api):
    api.create("sub-user")
    stripe.fake.objects["subscriptions/sub_1"] = subscription(metadata={"customer_user_id": "sub-user"})
    assert stripe.send("checkout.session.completed", session()) == "applied"
    assert sub(api, "sub-user")["store_original_transaction_id"] == "sub_1"
    assert profile(api, "u1")["subscriptions"] == []  # the customer's metadata names u1: not read
    assert not [path for path in stripe.fake.requests if path.startswith("/v1/customers/")]
