"""Paddle Billing: importing a subscription or transaction by its id, read from Paddle's API.

The API is called with the app's API key (a bearer token), at Paddle's sandbox or live address as
the app is configured (``SUBLEDGER_PADDLE_API_BASE`` overrides both). Paddle's current state is
what is recorded, so importing again changes nothing.
"""

from typing import Any
from urllib.parse import parse_qsl, urlsplit
from uuid import UUID

import httpx
from pydantic import ValidationError

from subledger.catalog import service as catalog_service
from subledger.core import strict_json
from subledger.core.dates import parse_datetime
from subledger.core.errors import NON_FIELD, ApiError, from_validation_errors
from subledger.core.profile_ref import ProfileRef
from subledger.core.runtime import Runtime
from subledger.profiles import service as profiles_service
from subledger.purchases import service as purchases_service
from subledger.purchases.schemas import TransactionIn
from subledger.stores import service as stores_service
from subledger.stores.paddle import rules
from subledger.stores.rules import UNREADABLE, Notification
from subledger.stores.service import StoreConfig

LIVE_API, SANDBOX_API = "https://api.paddle.com", "https://sandbox-api.paddle.com"
TIMEOUT_SECONDS = 10.0
PAGE = 200


def configure(
    rt: Runtime,
    app_id: UUID,
    api_key: str | None = None,
    notification_secret: str | None = None,
    sandbox: bool | None = None,
    match_email: bool | None = None,
) -> dict[str, Any]:
    """Paddle's API key and notification secret, its sandbox or live environment, and whether a
    notification without a customer_user_id names the profile by its Paddle customer's email."""
    return stores_service.configure(
        rt,
        app_id,
        rules.STORE,
        {"sandbox": sandbox, "match_email": match_email},
        {"api_key": api_key, "notification_secret": notification_secret},
    )


def _refused(code: str, message: str) -> ApiError:
    return ApiError.one(400, code, NON_FIELD, message)


NOT_FOUND = ("invalid_paddle_credentials_or_purchase_not_found", "Invalid Paddle credentials or purchase not found")
NO_KEY = ("paddle_api_key_not_found", "Paddle API key not found")


class PaddleError(Exception):
    """Paddle answered with an error status."""

    def __init__(self, status: int):
        super().__init__(f"Paddle answered {status}")
        self.status = status


class PaddleApi:
    """The few reads of Paddle's API that an import needs."""

    def __init__(self, rt: Runtime, config: StoreConfig):
        key = config.secrets.get("api_key")
        if key is None:
            raise _refused(*NO_KEY)
        sandbox = bool(config.settings.get("sandbox"))
        self.match_email = bool(config.settings.get("match_email"))
        self.environment = "Sandbox" if sandbox else "Production"
        base = rt.settings.paddle_api_base or (SANDBOX_API if sandbox else LIVE_API)
        self._client = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=TIMEOUT_SECONDS)

    def get(self, path: str, params: dict[str, str] | None = None) -> dict[str, Any]:
        response = self._client.get(path, params=params)
        if response.status_code >= 400:
            raise PaddleError(response.status_code)
        found: dict[str, Any] = response.json()
        return found

    def every(self, path: str, params: dict[str, str]) -> list[dict[str, Any]]:
        """Every item of a list, page by page (Paddle's ``next`` link gives the next page's query)."""
        items, query = [], {**params, "per_page": str(PAGE)}
        while True:
            page = self.get(path, query)
            items += page["data"]
            pagination = (page.get("meta") or {}).get("pagination") or {}
            following = dict(parse_qsl(urlsplit(pagination.get("next") or "").query))
            if not pagination.get("has_more") or not following or following == query:
                return items  # the last page (or a next page that is this one again)
            query = following

    def close(self) -> None:
        self._client.close()


def _subscription(api: PaddleApi, subscription_id: str) -> tuple[list[dict[str, Any]], str | None]:
    """A subscription's ledger transactions, and the customer_user_id its checkout named (if any)."""
    subscription = api.get(f"/subscriptions/{subscription_id}")["data"]
    transactions = api.every("/transactions", {"subscription_id": subscription_id, "include": "address"})
    refunds = rules.refunded(api.every("/adjustments", {"subscription_id": subscription_id}))
    named = [rules.account(obj) for obj in (subscription, *transactions)]
    account = next((found for found in named if found), None) or _email(api, subscription)
    return rules.subscription_transactions(subscription, transactions, refunds, api.environment), account


def _transaction(api: PaddleApi, transaction_id: str) -> tuple[list[dict[str, Any]], str | None, str]:
    """A transaction's ledger transactions (its subscription's, if it has one), the
    customer_user_id its checkout named, and the chain: the subscription, or itself."""
    transaction = api.get(f"/transactions/{transaction_id}", {"include": "address"})["data"]
    if subscription_id := transaction.get("subscription_id"):
        bodies, account = _subscription(api, subscription_id)
        return bodies, account or rules.account(transaction), subscription_id
    refunds = rules.refunded(api.every("/adjustments", {"transaction_id": transaction_id}))
    body = rules.one_time_transaction(transaction, refunds, api.environment)
    return ([body] if body else []), rules.account(transaction) or _email(api, transaction), transaction_id


def _email(api: PaddleApi, obj: dict[str, Any]) -> str | None:
    """The email of the object's Paddle customer, when the app names profiles by it."""
    if not api.match_email or not obj.get("customer_id"):
        return None
    email = api.get(f"/customers/{obj['customer_id']}")["data"].get("email")
    return email if isinstance(email, str) and email else None


def _bodies(api: PaddleApi, token: str) -> list[dict[str, Any]]:
    """The ledger transactions of a subscription (sub_...) or a transaction (txn_...) and its history."""
    if token.startswith("txn_"):
        return _transaction(api, token)[0]
    if token.startswith("sub_"):
        return _subscription(api, token)[0]
    raise _refused(*NOT_FOUND)


def transactions_for(rt: Runtime, app_id: UUID, token: str) -> list[TransactionIn]:
    """The transactions Paddle reports for a subscription or transaction id. Reads Paddle, writes nothing."""
    config = stores_service.config(rt, app_id, rules.STORE)
    if config is None:
        raise _refused(*NO_KEY)
    api = PaddleApi(rt, config)
    try:
        bodies = _bodies(api, token)
    except PaddleError as error:
        if error.status in (401, 403, 404):
            raise _refused(*NOT_FOUND) from None
        raise _unavailable(error) from None
    except httpx.HTTPError as error:
        raise _unavailable(error) from None
    except UNREADABLE as error:
        raise stores_service.unreadable_answer(rules.STORE, error) from None
    finally:
        api.close()
    try:
        return [TransactionIn.model_validate(body) for body in bodies]
    except ValidationError as invalid:
        raise from_validation_errors(invalid.errors()) from None


def _unavailable(error: Exception) -> ApiError:
    return ApiError.one(502, "paddle_unavailable", NON_FIELD, f"Paddle could not be reached: {error}")


def validate(rt: Runtime, app_id: UUID, customer_user_id: str, token: str) -> dict[str, Any]:
    """Import a Paddle purchase and its history for a customer_user_id (creating the profile when
    it has none) and answer the profile. 400 ``no_products_found`` when none of its prices is a
    product of the app's catalog (store ``paddle``)."""
    transactions = transactions_for(rt, app_id, token)
    with rt.db.read() as conn:
        catalog = catalog_service.catalog(conn, app_id)
    if not any(catalog.product(tx.store, tx.store_product_id, None) for tx in transactions):
        raise _refused("no_products_found", "No products found")
    purchases_service.import_transactions(rt, app_id, customer_user_id, transactions)
    return profiles_service.get_profile(rt, app_id, ProfileRef(customer_user_id=customer_user_id))


# Notifications -----------------------------------------------------------------------


def receive_notification(rt: Runtime, app_id: UUID, body: bytes, signature: str | None, remote: str | None) -> str:
    """A Paddle notification: verify its signature, read what it names back from Paddle, apply.
    ``subscription.*``, ``transaction.*`` and ``adjustment.*`` change the ledger; others are kept."""
    config = stores_service.notification_config(rt, app_id, rules.STORE)
    secret = config.secrets.get("notification_secret")
    if secret is None:
        raise stores_service.refuse(rt, app_id, rules.STORE, "no notification secret is configured", body, remote)
    try:
        rules.check_signature(signature, body, secret, rt.clock.now().timestamp())
        event = strict_json.loads(body)
        kind, event_id, obj = event["event_type"], event["event_id"], event["data"]
        occurred_at = parse_datetime(event["occurred_at"])
    except (ValueError, *UNREADABLE) as error:
        raise stores_service.refuse(rt, app_id, rules.STORE, f"Paddle notification: {error}", body, remote) from None
    api = PaddleApi(rt, config)  # without an API key: paddle_api_key_not_found
    try:
        bodies, account, chain = _named(api, kind, obj)
    except PaddleError as error:
        if error.status in (401, 403):
            raise _refused(*NOT_FOUND) from None  # Paddle keeps retrying until the key is mended
        raise _unavailable(error) from None
    except httpx.HTTPError as error:
        raise _unavailable(error) from None  # Paddle sends the notification again later
    except UNREADABLE as error:
        reason = f"Paddle notification not understood: {type(error).__name__} {error}"
        raise stores_service.refuse(rt, app_id, rules.STORE, reason, body, remote) from None
    finally:
        api.close()
    notification = Notification(
        store=rules.STORE,
        notification_id=event_id,
        kind=kind,
        signed_at=occurred_at,
        original_transaction_id=chain,
        account=account,
        transactions=bodies,
    )
    return stores_service.receive(rt, app_id, notification)


def _named(api: PaddleApi, kind: str, obj: dict[str, Any]) -> tuple[list[dict[str, Any]], str | None, str | None]:
    """What a notification names, read back from Paddle: ledger transactions, account, chain."""
    if kind.startswith("subscription."):
        bodies, account = _subscription(api, obj["id"])
        return bodies, account, obj["id"]
    if kind.startswith("transaction."):
        return _transaction(api, obj["id"])
    if kind.startswith("adjustment."):
        return _transaction(api, obj["transaction_id"])
    return [], None, None
