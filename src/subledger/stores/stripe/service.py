"""Stripe: importing a subscription or payment intent, and receiving Stripe's webhooks.

A webhook is verified with the stripe library (``Stripe-Signature``), then the
objects it names are read back from Stripe: the subscription with every
invoice, the payment intent, the charge. Stripe's current state is what is
recorded, so events arriving late, twice or out of order change nothing wrong.
"""

from typing import Any
from uuid import UUID

import stripe
from pydantic import ValidationError

from subledger.core.dates import from_timestamp
from subledger.core.errors import NON_FIELD, ApiError, bad_request, from_validation_errors
from subledger.core.runtime import Runtime
from subledger.purchases.schemas import TransactionIn
from subledger.stores import service as stores_service
from subledger.stores.rules import UNREADABLE, Notification
from subledger.stores.service import StoreConfig
from subledger.stores.stripe import rules

HOW_TO_CONFIGURE = "`subledger stores stripe --app ... --secret-key ...`"


def configure(
    rt: Runtime,
    app_id: UUID,
    secret_key: str | None = None,
    webhook_secret: str | None = None,
    test_secret_key: str | None = None,
    test_webhook_secret: str | None = None,
    profile_source: str | None = None,
) -> dict[str, Any]:
    """Stripe's keys for live and test mode (a key alone serves both), and where the profile of
    a purchase is read from (``rules.PROFILE_SOURCES``)."""
    secrets = {
        "secret_key": secret_key,
        "webhook_secret": webhook_secret,
        "test_secret_key": test_secret_key,
        "test_webhook_secret": test_webhook_secret,
    }
    return stores_service.configure(rt, app_id, rules.STORE, {"profile_source": profile_source}, secrets)


def _client(rt: Runtime, config: StoreConfig, live: bool = True) -> stripe.StripeClient:
    """A client with the app's key for live or test mode (the one key when only one is set)."""
    names = ("secret_key", "test_secret_key") if live else ("test_secret_key", "secret_key")
    key = config.secrets.get(names[0]) or config.secrets.get(names[1])
    if key is None:
        raise bad_request("value_error", NON_FIELD, f"Stripe's secret key is not configured: {HOW_TO_CONFIGURE}.")
    return stripe.StripeClient(key, base_addresses={"api": rt.settings.stripe_api_base}, max_network_retries=2)


def _subscription_bodies(
    client: stripe.StripeClient, subscription_id: str
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The subscription and the set-transaction bodies its invoices make."""
    subscription = client.v1.subscriptions.retrieve(subscription_id).to_dict()
    invoices: list[dict[str, Any]] = []
    after: str | None = None
    while True:  # every invoice of the subscription, page by page
        params: stripe.params.InvoiceListParams = {"subscription": subscription_id, "limit": 100}
        if after is not None:
            params["starting_after"] = after
        page = client.v1.invoices.list(params=params)
        invoices += [invoice.to_dict() for invoice in page.data]
        if not page.has_more or page.data[-1].id is None:
            break
        after = page.data[-1].id
    return subscription, rules.subscription_transactions(subscription, invoices)


def _fetch(client: stripe.StripeClient, token: str) -> list[dict[str, Any]]:
    """The set-transaction bodies that the token's Stripe object and its history make."""
    if token.startswith("sub_"):
        return _subscription_bodies(client, token)[1]
    if token.startswith("pi_"):
        body = rules.payment_transaction(client.v1.payment_intents.retrieve(token).to_dict())
        return [body] if body else []
    raise bad_request("base_error", "stripe_token", "A Stripe subscription (sub_...) or payment intent (pi_...) id.")


def _unavailable(error: stripe.StripeError) -> ApiError:
    return ApiError.one(502, "stripe_unavailable", NON_FIELD, f"Stripe could not be reached: {error}")


def transactions_for(rt: Runtime, app_id: UUID, token: str) -> list[TransactionIn]:
    """The transactions Stripe reports for a subscription or payment intent id. Reads Stripe, writes nothing."""
    client = _client(rt, stores_service.require_config(rt, app_id, rules.STORE, HOW_TO_CONFIGURE))
    try:
        bodies = _fetch(client, token)
    except stripe.InvalidRequestError as exc:
        raise bad_request("base_error", "stripe_token", f"Stripe: {exc.user_message or exc}") from None
    except stripe.AuthenticationError:
        raise bad_request("value_error", NON_FIELD, "Stripe refused this app's secret key.") from None
    except stripe.StripeError as exc:
        raise _unavailable(exc) from None
    except UNREADABLE as error:
        raise stores_service.unreadable_answer(rules.STORE, error) from None
    try:
        return [TransactionIn.model_validate(body) for body in bodies]
    except ValidationError as invalid:
        raise from_validation_errors(invalid.errors()) from None


# Webhooks ------------------------------------------------------------------------


def receive_webhook(rt: Runtime, app_id: UUID, body: bytes, signature: str | None, remote: str | None) -> str:
    """A Stripe webhook: verify its signature (live or test endpoint's secret), read the objects
    it names back from Stripe with that mode's key, apply."""
    config = stores_service.notification_config(rt, app_id, rules.STORE)
    secrets = [config.secrets[name] for name in ("webhook_secret", "test_webhook_secret") if name in config.secrets]
    if not secrets:
        raise stores_service.refuse(rt, app_id, rules.STORE, "no webhook signing secret is configured", body, remote)
    try:
        event = _verified(body, signature or "", secrets)
    except stripe.SignatureVerificationError as error:
        raise stores_service.refuse(rt, app_id, rules.STORE, f"Stripe signature: {error}", body, remote) from None
    except (ValueError, AttributeError) as error:  # AttributeError: signed JSON that is not an object
        raise stores_service.refuse(rt, app_id, rules.STORE, f"Stripe payload: {error}", body, remote) from None
    source = config.settings.get("profile_source") or "metadata"
    try:
        notification = _notification(_client(rt, config, bool(event.get("livemode"))), event, source)
    except stripe.InvalidRequestError as error:
        if error.code != "resource_missing":
            raise _unavailable(error) from None
        # An object Stripe does not have (another account's, or deleted): telling Stripe to retry is pointless.
        reason = f"Stripe has no such object: {error.user_message or error}"
        raise stores_service.refuse(rt, app_id, rules.STORE, reason, body, remote) from None
    except stripe.StripeError as error:
        raise _unavailable(error) from None  # Stripe sends the event again later
    except UNREADABLE as error:
        reason = f"Stripe event not understood: {type(error).__name__} {error}"
        raise stores_service.refuse(rt, app_id, rules.STORE, reason, body, remote) from None
    return stores_service.receive(rt, app_id, notification)


def _verified(body: bytes, signature: str, secrets: list[str]) -> dict[str, Any]:
    """The event, if one of the secrets signed it (the last one's failure is raised otherwise)."""
    for secret in secrets[:-1]:
        try:
            return _event(body, signature, secret)
        except stripe.SignatureVerificationError:
            continue
    return _event(body, signature, secrets[-1])


def _event(body: bytes, signature: str, secret: str) -> dict[str, Any]:
    event: dict[str, Any] = stripe.Webhook.construct_event(body, signature, secret).to_dict()
    return event


def _notification(client: stripe.StripeClient, event: dict[str, Any], source: str) -> Notification:
    kind = event["type"]
    signed_at = from_timestamp(event["created"])
    obj = event["data"]["object"]
    transactions: list[dict[str, Any]] = []
    chain: str | None = None
    account: str | None = None
    refunds: dict[str, str] = {}
    subscription_id = rules.subscription_of(obj) if kind.startswith(("customer.subscription.", "invoice.")) else None
    if kind == "checkout.session.completed":
        transactions, chain, account = _checkout(client, obj, source)
    elif subscription_id:
        subscription, transactions = _subscription_bodies(client, subscription_id)
        chain, account = subscription_id, _account(client, source, subscription)
    elif kind == "payment_intent.succeeded" and _one_time_purchase(obj):
        body = rules.payment_transaction(obj)
        transactions = [body] if body else []
        chain, account = obj["id"], _account(client, source, obj)
    elif kind == "charge.refunded" and obj.get("refunded"):
        refunded_at = rules.refunded_at(obj, event["created"])
        invoice_id = _id(obj.get("invoice"))
        paid_for = invoice_id or _id(obj.get("payment_intent"))
        if invoice_id:
            chain = rules.subscription_of(client.v1.invoices.retrieve(invoice_id).to_dict())
        else:
            chain = paid_for
        refunds = {paid_for: refunded_at} if paid_for else {}
        account = _account(client, source, obj)
    return Notification(
        store=rules.STORE,
        notification_id=event["id"],
        kind=kind,
        signed_at=signed_at,
        original_transaction_id=chain,
        account=account,
        transactions=transactions,
        refunds=refunds,
    )


def _checkout(
    client: stripe.StripeClient, session: dict[str, Any], source: str
) -> tuple[list[dict[str, Any]], str | None, str | None]:
    """A completed Checkout Session (a Payment Link's too): its subscription and invoices, or its
    paid payment as a one-time purchase of the session's first line item's price."""
    if subscription_id := _id(session.get("subscription")):
        subscription, transactions = _subscription_bodies(client, subscription_id)
        return transactions, subscription_id, _account(client, source, session, subscription)
    account = _account(client, source, session)
    intent_id = _id(session.get("payment_intent"))
    if session.get("payment_status") != "paid" or intent_id is None:
        return [], None, account
    items = client.v1.checkout.sessions.line_items.list(session["id"]).data
    intent = client.v1.payment_intents.retrieve(intent_id).to_dict()
    price = items[0].price if items else None
    body = rules.payment_transaction(intent, price.id if price else None)
    return ([body] if body else []), intent_id, account


def _id(value: str | dict[str, Any] | None) -> str | None:
    """An object id, whether the object is expanded or not."""
    return value["id"] if isinstance(value, dict) else value


def _one_time_purchase(intent: dict[str, Any]) -> bool:
    """A payment intent is a purchase of its own when its metadata names the product. An
    invoice's (a subscription's) is not; recent Stripe API versions no longer say which
    invoice a payment intent pays, so the product in the metadata is what tells."""
    return not intent.get("invoice") and bool((intent.get("metadata") or {}).get(rules.PRODUCT_KEY))


def _account(client: stripe.StripeClient, source: str, obj: dict[str, Any], *more: dict[str, Any]) -> str | None:
    """The profile an object names (a session, then its subscription: ``more``), from the app's one
    source: the customer_user_id in their metadata, else their customer's; the customer's email;
    or a session's client_reference_id."""
    if source == "client_reference_id":
        reference = obj.get("client_reference_id")
        return reference if isinstance(reference, str) and reference else None
    if source == "email":
        email = (obj.get("customer_details") or {}).get("email")
        return email or (_customer(client, obj.get("customer")) or {}).get("email")
    for named in (obj, *more):
        in_metadata: str | None = (named.get("metadata") or {}).get(rules.ACCOUNT_KEY)
        if in_metadata:
            return in_metadata
    customer = next((named["customer"] for named in (obj, *more) if named.get("customer")), None)
    of_customer: str | None = ((_customer(client, customer) or {}).get("metadata") or {}).get(rules.ACCOUNT_KEY)
    return of_customer


def _customer(client: stripe.StripeClient, customer: str | dict[str, Any] | None) -> dict[str, Any] | None:
    """A customer, expanded or read from Stripe."""
    if customer is None or isinstance(customer, dict):
        return customer
    found: dict[str, Any] = client.v1.customers.retrieve(customer).to_dict()
    return found
