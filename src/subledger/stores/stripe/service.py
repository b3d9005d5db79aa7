"""Importing a Stripe subscription or payment intent into a profile's ledger."""

from typing import Any
from uuid import UUID

import stripe
from pydantic import ValidationError

from subledger.apps import service as apps_service
from subledger.core.errors import NON_FIELD, ApiError, bad_request, from_validation_errors
from subledger.core.runtime import Runtime
from subledger.purchases.schemas import TransactionIn
from subledger.stores.stripe import rules


def _client(rt: Runtime, app_id: UUID) -> stripe.StripeClient:
    key = apps_service.stripe_key(rt, app_id)
    if key is None:
        raise bad_request(
            "value_error",
            NON_FIELD,
            "Stripe is not configured for this app: `subledger apps configure --stripe-secret-key`.",
        )
    return stripe.StripeClient(key, base_addresses={"api": rt.settings.stripe_api_base}, max_network_retries=2)


def _fetch(client: stripe.StripeClient, token: str) -> list[dict[str, Any]]:
    """The set-transaction bodies that the token's Stripe object and its history make."""
    if token.startswith("sub_"):
        subscription = client.v1.subscriptions.retrieve(token)
        invoices, params = [], {"subscription": token, "limit": 100}
        while True:  # every invoice of the subscription, page by page
            page = client.v1.invoices.list(params=params)
            invoices += [invoice.to_dict() for invoice in page.data]
            if not page.has_more:
                break
            params = {**params, "starting_after": page.data[-1].id}
        return rules.subscription_transactions(subscription.to_dict(), invoices)
    if token.startswith("pi_"):
        body = rules.payment_transaction(client.v1.payment_intents.retrieve(token).to_dict())
        return [body] if body else []
    raise bad_request("base_error", "stripe_token", "A Stripe subscription (sub_...) or payment intent (pi_...) id.")


def transactions_for(rt: Runtime, app_id: UUID, token: str) -> list[TransactionIn]:
    """The transactions Stripe reports for a subscription or payment intent id. Reads Stripe, writes nothing."""
    client = _client(rt, app_id)
    try:
        bodies = _fetch(client, token)
    except stripe.InvalidRequestError as exc:
        raise bad_request("base_error", "stripe_token", f"Stripe: {exc.user_message or exc}") from None
    except stripe.AuthenticationError:
        raise bad_request("value_error", NON_FIELD, "Stripe refused this app's secret key.") from None
    except stripe.StripeError as exc:
        raise ApiError.one(502, "stripe_unavailable", NON_FIELD, f"Stripe could not be reached: {exc}") from None
    try:
        return [TransactionIn.model_validate(body) for body in bodies]
    except ValidationError as invalid:
        raise from_validation_errors(invalid.errors()) from None
