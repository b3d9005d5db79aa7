"""Google Play: Real-time Developer Notifications, the Play Developer API, and feeding the ledger.

Pub/Sub pushes a notification to the app's URL, which carries a secret
token (``?token=``) only subledger and the Pub/Sub subscription know. The
notification names a purchase token; its state is read from the Play
Developer API with the app's service account (OAuth via google-auth),
purchases are acknowledged, and the state is recorded.
"""

import hmac
import re
import secrets
import threading
from datetime import datetime
from typing import Any
from urllib.parse import quote
from uuid import UUID

import google.auth.exceptions
import google.auth.transport.requests
import httpx
import orjson
from google.oauth2 import service_account

from subledger.core.dates import format_datetime
from subledger.core.errors import NON_FIELD, ApiError, bad_request
from subledger.core.profile_ref import ProfileRef
from subledger.core.runtime import Runtime
from subledger.stores import service as stores_service
from subledger.stores.google import oidc, rules
from subledger.stores.rules import UNREADABLE, Notification
from subledger.stores.service import StoreConfig

HOW_TO_CONFIGURE = "`subledger stores play-store --app ... --package-name ... --service-account key.json`"
SCOPE = "https://www.googleapis.com/auth/androidpublisher"


def configure(
    rt: Runtime,
    app_id: UUID,
    package_name: str | None = None,
    service_account_json: str | None = None,
    push_service_account: str | None = None,
    push_audience: str | None = None,
) -> dict[str, Any]:
    """Set the Play settings of an app; the push token is made once, on first configuration.

    With ``push_service_account`` (the email of the service account the Pub/Sub subscription
    authenticates as) and ``push_audience`` (the audience it names), a push must carry Google's
    OIDC token for them, and the secret token of the push path no longer counts (both empty:
    the token counts again)."""
    if service_account_json:
        _credentials(service_account_json)  # refuse a key file google-auth cannot use, now rather than later
    existing = stores_service.config(rt, app_id, rules.STORE)
    given = {"package_name": package_name, "push_service_account": push_service_account, "push_audience": push_audience}
    settings = {**(existing.settings if existing else {}), **{k: v for k, v in given.items() if v is not None}}
    if bool(settings.get("push_service_account")) != bool(settings.get("push_audience")):
        raise bad_request(
            "value_error", "push_audience", "Give the push subscription's service account and audience together."
        )
    push_token = None if existing and "push_token" in existing.secrets else secrets.token_urlsafe(32)
    return stores_service.configure(
        rt,
        app_id,
        rules.STORE,
        given,
        {"service_account": service_account_json, "push_token": push_token},
    )


def push_path(rt: Runtime, app_id: UUID) -> str:
    """The path (with its secret token) to give Pub/Sub as the push endpoint."""
    config = stores_service.require_config(rt, app_id, rules.STORE, HOW_TO_CONFIGURE)
    return f"/stores/play-store/{app_id}/notifications/?token={config.secrets['push_token']}"


def _credentials(key_json: str) -> service_account.Credentials:
    try:
        # google-auth has no type hints
        credentials: service_account.Credentials = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
            orjson.loads(key_json), scopes=[SCOPE]
        )
        return credentials
    except (orjson.JSONDecodeError, ValueError, KeyError) as error:
        raise bad_request("value_error", "service_account", f"Not a service-account key: {error}") from None


SEGMENT = re.compile(r"[\w.\-]{1,4096}", re.ASCII)


def _segment(value: str) -> str:
    """A purchase token or product id as a URL path segment: Play's are ASCII letters, digits,
    ``._-``, and not dots alone (``.`` and ``..`` would move the request to other paths of the
    API, with the app's credentials); percent-encoded all the same."""
    if not isinstance(value, str) or not SEGMENT.fullmatch(value) or not value.strip("."):
        raise PlayError(400, "not a Play purchase token or product id")
    return quote(value, safe="")


class PlayError(Exception):
    def __init__(self, status: int | None, message: str):
        super().__init__(message)
        self.status = status


class PlayApi:
    """The few Play Developer API calls subledger makes, for one app."""

    _tokens: dict[str, service_account.Credentials] = {}  # service-account key -> credentials, per process
    _lock = threading.Lock()

    def __init__(self, rt: Runtime, config: StoreConfig):
        key = config.secrets.get("service_account")
        if key is None:
            raise bad_request(
                "value_error", NON_FIELD, f"Play's service account is not configured: {HOW_TO_CONFIGURE}."
            )
        self.package = config.settings["package_name"]
        self.base = f"{rt.settings.google_play_api_base}/androidpublisher/v3/applications/{self.package}"
        self.timeout = rt.settings.webhook_timeout_seconds
        self._key = key

    def _token(self) -> str:
        """An OAuth access token for the service account, refreshed when it runs out."""
        with self._lock:
            credentials = self._tokens.get(self._key) or _credentials(self._key)
            if not credentials.valid:
                try:
                    credentials.refresh(google.auth.transport.requests.Request())  # type: ignore[no-untyped-call]
                except google.auth.exceptions.GoogleAuthError as error:
                    raise PlayError(None, f"Google refused the service account: {error}") from None
            self._tokens[self._key] = credentials
            token = credentials.token  # valid: refreshed if it was not
            assert isinstance(token, str)
            return token

    def _call(self, method: str, path: str) -> dict[str, Any]:
        try:
            response = httpx.request(
                method, self.base + path, headers={"Authorization": f"Bearer {self._token()}"}, timeout=self.timeout
            )
        except httpx.HTTPError as error:
            raise PlayError(None, f"Google Play could not be reached: {error}") from None
        if not response.is_success:
            raise PlayError(response.status_code, f"Google Play answered {response.status_code}: {response.text[:200]}")
        return response.json() if response.content else {}

    def subscription(self, token: str) -> dict[str, Any]:
        return self._call("GET", f"/purchases/subscriptionsv2/tokens/{_segment(token)}")

    def acknowledge_subscription(self, product_id: str, token: str) -> None:
        self._call("POST", f"/purchases/subscriptions/{_segment(product_id)}/tokens/{_segment(token)}:acknowledge")

    def product(self, product_id: str, token: str) -> dict[str, Any]:
        return self._call("GET", f"/purchases/products/{_segment(product_id)}/tokens/{_segment(token)}")

    def acknowledge_product(self, product_id: str, token: str) -> None:
        self._call("POST", f"/purchases/products/{_segment(product_id)}/tokens/{_segment(token)}:acknowledge")

    def price(self, product_id: str, region: str | None) -> dict[str, Any]:
        """The product's price in a region (its default price elsewhere)."""
        found = self._call("GET", f"/inappproducts/{_segment(product_id)}")
        price: dict[str, Any] = (found.get("prices") or {}).get(region or "") or found["defaultPrice"]
        return price


def _subscription_state(api: PlayApi, token: str, kind: str, at: datetime) -> tuple[dict[str, Any] | None, str | None]:
    """(transaction body, account) of a subscription purchase token, acknowledging it if needed."""
    purchase = api.subscription(token)
    if purchase.get("acknowledgementState") == "ACKNOWLEDGEMENT_STATE_PENDING":
        product_id = purchase["lineItems"][0]["productId"]
        api.acknowledge_subscription(product_id, token)
    body = rules.subscription_body(purchase, kind, at)
    if body is not None:
        body["store_purchase_token"] = token
    return body, rules.subscription_account(purchase)


def _product_state(api: PlayApi, product_id: str, token: str) -> tuple[dict[str, Any] | None, str | None]:
    purchase = api.product(product_id, token)
    if purchase.get("purchaseState", 0) == 0 and purchase.get("acknowledgementState", 0) == 0:
        api.acknowledge_product(product_id, token)
    body = rules.product_body(purchase, product_id, api.price(product_id, purchase.get("regionCode")))
    if body is not None:
        body["store_purchase_token"] = token
    return body, purchase.get("obfuscatedExternalAccountId")


def _notification(api: PlayApi, message_id: str, data: dict[str, Any]) -> Notification:
    at = rules.event_time(data)
    kind, body, account, chain, refunds = "TEST", None, None, None, {}
    if subscription := data.get("subscriptionNotification"):
        kind = rules.SUBSCRIPTION_TYPES.get(subscription["notificationType"], "SUBSCRIPTION_OTHER")
        body, account = _subscription_state(api, subscription["purchaseToken"], kind, at)
    elif product := data.get("oneTimeProductNotification"):
        kind = rules.ONE_TIME_TYPES.get(product["notificationType"], "ONE_TIME_PRODUCT_OTHER")
        body, account = _product_state(api, product["sku"], product["purchaseToken"])
    elif voided := data.get("voidedPurchaseNotification"):
        kind = "VOIDED_PURCHASE"
        chain = rules.original_order(voided["orderId"])
        refunds = {voided["orderId"]: format_datetime(at)}
    return Notification(
        store=rules.STORE,
        notification_id=message_id,
        kind=kind,
        signed_at=at,
        original_transaction_id=chain if body is None else body["store_original_transaction_id"],
        account=account,
        transactions=[] if body is None else [body],
        refunds=refunds,
    )


def _unavailable(error: PlayError) -> ApiError:
    return ApiError.one(502, "store_unavailable", NON_FIELD, str(error))


def _push_refusal(
    rt: Runtime, config: stores_service.StoreConfig, token: str | None, authorization: str | None
) -> str | None:
    """Why a push is not Pub/Sub's for this app (None when it is): Google's OIDC token for the
    subscription, when the app names one, else the secret token of the push path."""
    settings = config.settings
    if settings.get("push_service_account"):
        certs = oidc.certs_at(rt.settings.google_oauth2_certs_url)
        try:
            oidc.verify(authorization, certs, settings["push_audience"], settings["push_service_account"])
        except oidc.NotAuthenticated as refused:
            return str(refused)
        return None
    if not token or not hmac.compare_digest(token.encode(), config.secrets["push_token"].encode()):
        return "the push token is missing or wrong"
    return None


def receive_notification(
    rt: Runtime, app_id: UUID, body: bytes, token: str | None, authorization: str | None, remote: str | None
) -> str:
    """A Real-time Developer Notification pushed by Pub/Sub."""
    config = stores_service.notification_config(rt, app_id, rules.STORE)
    try:
        refusal = _push_refusal(rt, config, token, authorization)
    except oidc.CertsUnavailable as error:  # not the push's fault: Pub/Sub pushes it again later
        raise ApiError.one(503, "store_unavailable", NON_FIELD, str(error)) from None
    if refusal is not None:
        raise stores_service.refuse(rt, app_id, rules.STORE, refusal, body, remote)
    try:
        message_id, data = rules.parse_push(body)
        if data.get("packageName") != config.settings["package_name"]:
            raise ValueError(f"package {data.get('packageName')!r} is not this app's")
        rules.event_time(data)
    except UNREADABLE as error:
        raise stores_service.refuse(
            rt, app_id, rules.STORE, f"Play notification refused: {error}", body, remote
        ) from None
    try:
        notification = _notification(PlayApi(rt, config), message_id, data)
    except UNREADABLE as error:
        reason = f"Play notification not understood: {type(error).__name__} {error}"
        raise stores_service.refuse(rt, app_id, rules.STORE, reason, body, remote) from None
    except PlayError as error:
        if error.status in (400, 404, 410):  # Google does not know the token: nothing to record
            return stores_service.receive(
                rt, app_id, Notification(rules.STORE, message_id, "UNKNOWN_TOKEN", rules.event_time(data)), raw=body
            )
        raise _unavailable(error) from None  # Pub/Sub pushes it again later
    return stores_service.receive(rt, app_id, notification, raw=body)


def record_token(
    rt: Runtime, app_id: UUID, ref: ProfileRef, purchase_type: str, product_id: str | None, token: str
) -> dict[str, Any]:
    """A purchase token the app's server sends for a profile: its state is read from Play and recorded."""
    api = PlayApi(rt, stores_service.require_config(rt, app_id, rules.STORE, HOW_TO_CONFIGURE))
    now = rt.clock.now()
    try:
        if purchase_type == "subscription":
            body, account = _subscription_state(api, token, "SUBSCRIPTION_VALIDATED", now)
        else:
            assert product_id is not None  # the endpoint asks for it with a one-time purchase
            body, account = _product_state(api, product_id, token)
        if body is None:
            raise bad_request(
                "base_error", "purchase_token", "The purchase is pending or cancelled: nothing to record."
            )
        notification = Notification(
            store=rules.STORE,
            notification_id=token,
            kind="PURCHASE_TOKEN",
            signed_at=now,
            original_transaction_id=body["store_original_transaction_id"],
            account=account,
            transactions=[body],
        )
    except PlayError as error:
        if error.status in (400, 404, 410):
            raise bad_request(
                "base_error", "purchase_token", "Google Play does not know this purchase token."
            ) from None
        raise _unavailable(error) from None
    except UNREADABLE as error:
        raise stores_service.unreadable_answer(rules.STORE, error) from None
    return stores_service.record_for_profile(rt, app_id, ref, notification)
