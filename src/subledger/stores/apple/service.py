"""App Store: verifying signed payloads with Apple's library, and feeding the ledger.

Every JWS Apple signs carries its certificate chain; ``SignedDataVerifier``
checks the chain up to the root certificates the app configured (Apple's
own in production, a test chain in tests), Apple's certificate OIDs, the
signature, the bundle id and the environment.
"""

import base64
import binascii
from collections.abc import Callable
from typing import Any, TypeVar
from uuid import UUID

import jwt
import orjson
import requests
from appstoreserverlibrary.api_client import APIException, AppStoreServerAPIClient
from appstoreserverlibrary.models.ConsumptionRequest import ConsumptionRequest
from appstoreserverlibrary.models.DeliveryStatus import DeliveryStatus
from appstoreserverlibrary.models.Environment import Environment
from appstoreserverlibrary.models.RefundPreference import RefundPreference
from appstoreserverlibrary.signed_data_verifier import (
    SignedDataVerifier,
    VerificationException,
    VerificationStatus,
)
from cattrs.errors import BaseValidationError
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from subledger.core.errors import NON_FIELD, ApiError, bad_request
from subledger.core.profile_ref import ProfileRef
from subledger.core.runtime import Runtime
from subledger.refund_saver import service as refund_saver_service
from subledger.stores import service as stores_service
from subledger.stores.apple import rules
from subledger.stores.rules import UNREADABLE, Notification
from subledger.stores.service import StoreConfig

HOW_TO_CONFIGURE = "`subledger stores app-store --app ... --bundle-id ... --root-certificate ...`"

T = TypeVar("T")


def configure(
    rt: Runtime,
    app_id: UUID,
    bundle_id: str | None = None,
    app_apple_id: int | None = None,
    root_certificates: list[bytes] | None = None,
    issuer_id: str | None = None,
    key_id: str | None = None,
    private_key: str | None = None,
) -> dict[str, Any]:
    """Set the App Store settings of an app; root certificates are DER or PEM bytes.

    The App Store Connect API key (issuer id, key id, private key) is kept for
    calls to the App Store Server API; the notifications and transactions
    subledger receives are verified without it.
    """
    roots = [_root(cert) for cert in root_certificates] if root_certificates else None
    if private_key:
        _private_key(private_key)
    settings = {
        "bundle_id": bundle_id,
        "app_apple_id": app_apple_id,
        "root_certificates": roots,
        "issuer_id": issuer_id,
        "key_id": key_id,
    }
    return stores_service.configure(rt, app_id, rules.STORE, settings, {"private_key": private_key})


def _root(certificate: bytes) -> str:
    """A root certificate, PEM or DER, as the base64 DER the settings keep; 400 when it is neither."""
    load = (
        x509.load_pem_x509_certificate if certificate.lstrip().startswith(b"-----") else x509.load_der_x509_certificate
    )
    try:
        loaded = load(certificate)
    except ValueError:
        raise bad_request("value_error", "root_certificate", "Not an X.509 certificate (DER or PEM).") from None
    return base64.b64encode(loaded.public_bytes(serialization.Encoding.DER)).decode()


def certificate_from_text(text: str) -> bytes:
    """A root certificate sent as text (the admin API's JSON): PEM as it is, else the base64 of
    its DER; 400 when it is neither."""
    if text.lstrip().startswith("-----"):
        return text.encode()
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise bad_request("value_error", "root_certificates", "Not PEM, nor base64 of a DER certificate.") from None


def _private_key(pem: str) -> None:
    try:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError):
        key = None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise bad_request("value_error", "private_key", "Not an App Store Connect API key (a .p8 EC private key).")


# Apple signs in these two; the library skips verification for Xcode and local testing,
# so a payload claiming those is refused rather than believed.
SIGNED_ENVIRONMENTS = {"Production": Environment.PRODUCTION, "Sandbox": Environment.SANDBOX}


class Unreadable(ValueError):
    """A payload that is not what Apple sends (no verification attempted)."""


def _verifier(config: StoreConfig, environment: Environment, online: bool) -> SignedDataVerifier:
    roots = [base64.b64decode(cert) for cert in config.settings.get("root_certificates") or []]
    app_apple_id = config.settings.get("app_apple_id")
    if environment == Environment.PRODUCTION and app_apple_id is None:
        raise Unreadable("a production payload, and the app's Apple id is not configured (--app-apple-id)")
    return SignedDataVerifier(roots, online, environment, config.settings["bundle_id"], app_apple_id)


def _claimed_environment(signed: str, *paths: tuple[str, ...]) -> Environment:
    """The environment the payload says it is from (at the first of ``paths`` it has):
    it picks the verifier, which then insists that the verified payload says the same."""
    try:
        claims = jwt.decode(signed, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise Unreadable("not a JWS") from None
    for path in paths:
        found: Any = claims
        for key in path:
            found = found.get(key) if isinstance(found, dict) else None
        if found is not None:
            break
    if not isinstance(found, str) or found not in SIGNED_ENVIRONMENTS:
        raise Unreadable(f"environment {found!r} is neither Production nor Sandbox")
    return SIGNED_ENVIRONMENTS[found]


def _claims(signed: str) -> dict[str, Any]:
    """The claims of a JWS that has been verified."""
    claims: dict[str, Any] = jwt.decode(signed, options={"verify_signature": False})
    return claims


def _verify_notification(
    config: StoreConfig, body: bytes, online: bool
) -> tuple[dict[str, Any], dict[str, Any] | None, dict[str, Any] | None]:
    """(payload, transaction info, renewal info) of a notification body, all verified."""
    try:
        signed = orjson.loads(body)["signedPayload"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        raise Unreadable('the body is not {"signedPayload": "<JWS>"}') from None
    if not isinstance(signed, str):
        raise Unreadable("signedPayload is not a string")
    verifier = _verifier(
        config, _claimed_environment(signed, ("data", "environment"), ("summary", "environment")), online
    )
    verifier.verify_and_decode_notification(signed)
    payload = _claims(signed)
    data = payload.get("data") or {}
    tx = renewal = None
    if data.get("signedTransactionInfo"):
        verifier.verify_and_decode_signed_transaction(data["signedTransactionInfo"])
        tx = _claims(data["signedTransactionInfo"])
    if data.get("signedRenewalInfo"):
        verifier.verify_and_decode_renewal_info(data["signedRenewalInfo"])
        renewal = _claims(data["signedRenewalInfo"])
    return payload, tx, renewal


def _read(convert: Callable[..., Notification], *claims: dict[str, Any] | None) -> Notification:
    """Verified claims in the ledger's terms; claims whose fields are not of the types Apple
    documents (a date that is not a number of milliseconds, say) are refused as unreadable."""
    try:
        return convert(*claims)
    except UNREADABLE as error:
        raise Unreadable(f"a field is not as Apple documents it ({error})") from None


def _verified(rt: Runtime, app_id: UUID, body: bytes, remote: str | None, verify: Callable[[], T]) -> T:
    """``verify()``'s result; a payload that fails is written to the audit log and refused.
    Apple's revocation service being unreachable is not the payload's fault: 503, sent again later."""
    try:
        return verify()
    except VerificationException as error:
        if error.status == VerificationStatus.RETRYABLE_VERIFICATION_FAILURE:
            raise ApiError.one(
                503, "store_unavailable", NON_FIELD, "Apple's certificate status service did not answer."
            ) from None
        reason = f"App Store signature verification failed: {error.status.name}"
    # BaseValidationError: app-store-server-library's, for claims not of the types Apple documents.
    except (Unreadable, binascii.Error, BaseValidationError) as error:
        reason = f"App Store payload refused: {error}"
    raise stores_service.refuse(rt, app_id, rules.STORE, reason, body, remote)


def receive_notification(rt: Runtime, app_id: UUID, body: bytes, remote: str | None) -> str:
    """An App Store Server Notification V2: verify it, then apply or keep it; a consumption request
    is answered first (the Refund Saver)."""
    config = stores_service.notification_config(rt, app_id, rules.STORE)
    online = rt.settings.apple_online_checks

    def verify() -> tuple[Notification, dict[str, Any] | None]:
        payload, tx, renewal = _verify_notification(config, body, online)
        return _read(rules.notification, payload, tx, renewal), tx

    notification, tx = _verified(rt, app_id, body, remote, verify)
    if (
        notification.kind == rules.CONSUMPTION_REQUEST
        and tx is not None
        and not stores_service.seen(rt, app_id, notification)
    ):
        _answer_consumption_request(rt, app_id, config, notification, tx)
    return stores_service.receive(rt, app_id, notification, raw=body)


# The Refund Saver's answers to consumption requests ------------------------------------


class ServerApi(AppStoreServerAPIClient):
    """Apple's App Store Server API client, at ``base_url`` when one is configured (a stand-in's)."""

    def __init__(self, base_url: str, **credentials: Any):
        super().__init__(**credentials)
        if base_url:
            self._base_url = base_url.rstrip("/")


def _server_api(rt: Runtime, config: StoreConfig, environment: Environment) -> ServerApi | None:
    """A client signing with the app's App Store Connect API key; None when none is configured."""
    settings, private_key = config.settings, config.secrets.get("private_key")
    if not (private_key and settings.get("issuer_id") and settings.get("key_id")):
        return None
    return ServerApi(
        rt.settings.app_store_api_base,
        signing_key=private_key.encode(),
        key_id=settings["key_id"],
        issuer_id=settings["issuer_id"],
        bundle_id=settings["bundle_id"],
        environment=environment,
    )


REFUND_PREFERENCES = {
    "decline": RefundPreference.DECLINE,
    "grant": RefundPreference.GRANT_FULL,
    "grant_prorated": RefundPreference.GRANT_PRORATED,
}


def _apple_unavailable() -> ApiError:
    """Answered to a consumption request Apple's API could not take: Apple sends it again later."""
    return ApiError.one(503, "store_unavailable", NON_FIELD, "The App Store Server API did not take the answer.")


def _answer_consumption_request(
    rt: Runtime, app_id: UUID, config: StoreConfig, notification: Notification, tx: dict[str, Any]
) -> None:
    """Tell Apple what the ledger knows of the transaction a customer asks a refund for, as the
    app's and the profile's Refund Saver settings say (Send Consumption Information), and log it."""
    decision = refund_saver_service.decide(rt, app_id, tx["transactionId"])
    if (answer := decision.answer) is not None:
        api = _server_api(rt, config, SIGNED_ENVIRONMENTS[tx["environment"]])
        if api is None:
            decision = decision.unanswered("not answered: no App Store Server API key is configured")
        else:
            request = ConsumptionRequest(
                customerConsented=True,
                sampleContentProvided=decision.sample_content_provided,
                deliveryStatus=DeliveryStatus.DELIVERED,
                consumptionPercentage=answer.consumption,
                refundPreference=REFUND_PREFERENCES.get(answer.preference or ""),  # none: not said
            )
            try:
                api.send_consumption_information(tx["transactionId"], request)
            except APIException as error:
                if error.http_status_code >= 500 or error.http_status_code == 429:
                    raise _apple_unavailable() from None
                refused = f"{error.http_status_code} {error.error_message or error.raw_api_error or ''}".strip()
                decision = decision.unanswered(f"not answered: Apple refused the answer ({refused})")
            except requests.RequestException:
                raise _apple_unavailable() from None
    refund_saver_service.record(rt, app_id, notification.notification_id, tx["transactionId"], decision)


def record_transaction(
    rt: Runtime, app_id: UUID, ref: ProfileRef, signed_transaction: str, remote: str | None
) -> dict[str, Any]:
    """A StoreKit 2 signed transaction the app's server posts for a profile."""
    config = stores_service.require_config(rt, app_id, rules.STORE, HOW_TO_CONFIGURE)
    online = rt.settings.apple_online_checks

    def verify() -> Notification:
        verifier = _verifier(config, _claimed_environment(signed_transaction, ("environment",)), online)
        verifier.verify_and_decode_signed_transaction(signed_transaction)
        return _read(rules.posted, _claims(signed_transaction))

    notification = _verified(rt, app_id, signed_transaction.encode(), remote, verify)
    return stores_service.record_for_profile(rt, app_id, ref, notification)
