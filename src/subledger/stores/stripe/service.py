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
    rt: Runtime, app_id: UUID, secret_key: str | None = None, webhook_secret: str | None = None
) -> dict[str, Any]:
    return stores_service.configure(
        rt, app_id, rules.STORE, {}, {"secret_key": secret_key, "webhook_secret": webhook_secret}
    )


def _client(rt: Runtime, config: StoreConfig) -> stripe.StripeClient:
    key = config.secrets.get("secret_key")
    if key is None:
        raise bad_request("value_error", NON_FIELD, f"Stripe's secret key is not configured: {HOW_TO_CONFIGURE}.")
    return stripe.StripeClient(key, base_addresses={"api": rt.settings.stripe_api_base}, max_network_retries=2)


def _subscription_bodies(client: stripe.StripeClient, subscription_id: str) -> tuple[dict, list[dict[str, Any]]]:
    """The subscription and the set-transaction bodies its invoices make."""
    subscription = client.v1.subscriptions.retrieve(subscription_id).to_dict()
    invoices, params = [], {"subscription": subscription_id, "limit": 100}
    while True:  # every invoice of the subscription, page by page
        page = client.v1.invoices.list(params=params)
        invoices += [invoice.to_dict() for invoice in page.data]
        if not page.has_more:
            break
        params = {**params, "starting_after": page.data[-1].id}
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
    """A Stripe webhook: verify its signature, read the objects it names back from Stripe, apply."""
    config = stores_service.notification_config(rt, app_id, rules.STORE)
    secret = config.secrets.get("webhook_secret")
    if secret is None:
        raise stores_service.refuse(rt, app_id, rules.STORE, "no webhook signing secret is configured", body, remote)
    try:
        event = stripe.Webhook.construct_event(body, signature or "", secret).to_dict()
    except stripe.SignatureVerificationError as error:
        raise stores_service.refuse(rt, app_id, rules.STORE, f"Stripe signature: {error}", body, remote) from None
    except (ValueError, AttributeError) as error:  # AttributeError: signed JSON that is not an object
        raise stores_service.refuse(rt, app_id, rules.STORE, f"Stripe payload: {error}", body, remote) from None
    try:
        notification = _notification(_client(rt, config), event)
    except stripe.StripeError as error:
        raise _unavailable(error) from None  # Stripe sends the event again later
    except UNREADABLE as error:
        reason = f"Stripe event not understood: {type(error).__name__} {error}"
        raise stores_service.refuse(rt, app_id, rules.STORE, reason, body, remote) from None
    return stores_service.receive(rt, app_id, notification)


def _notification(client: stripe.StripeClient, event: dict[str, Any]) -> Notification:
    kind = event["type"]
    signed_at = from_timestamp(event["created"])
    obj = event["data"]["object"]
    transactions, chain, account, refunds = [], None, None, {}
    subscription_id = rules.subscription_of(obj) if kind.startswith(("customer.subscription.", "invoice.")) else None
    if subscription_id:
        subscription, transactions = _subscription_bodies(client, subscription_id)
        chain, account = subscription_id, _account(client, subscription)
    elif kind == "payment_intent.succeeded" and _one_time_purchase(obj):
        body = rules.payment_transaction(obj)
        transactions = [body] if body else []
        chain, account = obj["id"], _account(client, obj)
    elif kind == "charge.refunded" and obj.get("refunded"):
        refunded_at = rules.refunded_at(obj, event["created"])
        invoice_id = _id(obj.get("invoice"))
        paid_for = invoice_id or _id(obj.get("payment_intent"))
        if invoice_id:
            chain = rules.subscription_of(client.v1.invoices.retrieve(invoice_id).to_dict())
        else:
            chain = paid_for
        refunds = {paid_for: refunded_at} if paid_for else {}
        account = _account(client, obj)
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


def _id(value: str | dict | None) -> str | None:
    """An object id, whether the object is expanded or not."""
    return value["id"] if isinstance(value, dict) else value


def _one_time_purchase(intent: dict[str, Any]) -> bool:
    """A payment intent is a purchase of its own when its metadata names the product. An
    invoice's (a subscription's) is not; recent Stripe API versions no longer say which
    invoice a payment intent pays, so the product in the metadata is what tells."""
    return not intent.get("invoice") and bool((intent.get("metadata") or {}).get(rules.PRODUCT_KEY))


def _account(client: stripe.StripeClient, obj: dict[str, Any]) -> str | None:
    """The customer_user_id in the object's metadata, else in its customer's."""
    found = (obj.get("metadata") or {}).get(rules.ACCOUNT_KEY)
    customer = obj.get("customer")
    if found or not customer:
        return found
    if isinstance(customer, dict):
        return (customer.get("metadata") or {}).get(rules.ACCOUNT_KEY)
    return (client.v1.customers.retrieve(customer).to_dict().get("metadata") or {}).get(rules.ACCOUNT_KEY)
