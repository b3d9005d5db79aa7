"""Legacy v1 rules: reading the profile id in the path, and the v1 profile shape. No I/O."""

import base64
import binascii
from typing import Any
from urllib.parse import unquote

from subledger.core.dates import format_datetime
from subledger.core.errors import NON_FIELD, ApiError, bad_request

MAX_ID = 255
INTEGRATION_IDS = (
    "appsflyer_id",
    "amplitude_user_id",
    "amplitude_device_id",
    "mixpanel_user_id",
    "appmetrica_profile_id",
    "appmetrica_device_id",
    "facebook_anonymous_id",
)


def path_id(raw_path: bytes, base64url: bool) -> str:
    """The ``{id}`` of ``/api/v1/sdk/profiles/{id}/...`` as the client meant it.

    Read from the raw path so that a percent-encoded ``/`` stays part of the id.
    """
    segment = raw_path.split(b"/")[5].decode("latin-1")  # "", api, v1, sdk, profiles, {id}
    try:
        value = unquote(segment, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        value = ""
    if base64url:
        try:
            value = base64.b64decode(value + "=" * (-len(value) % 4), altchars=b"-_", validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            value = ""
    if not value or len(value) > MAX_ID or "\x00" in value:
        raise bad_request(
            "base_error",
            "id",
            "The id must be a profile_id or a customer_user_id of 1 to 255 "
            "characters (UTF-8, Base64URL-encoded with is_user_id_base64url_encoded=1).",
        )
    return value


def _offer_fields(offer: dict[str, Any] | None) -> dict[str, Any]:
    offer = offer or {}
    promotional = offer.get("category") == "promotional"
    return {
        "active_introductory_offer_type": offer.get("type") if offer.get("category") == "introductory" else None,
        "active_promotional_offer_type": offer.get("type") if promotional else None,
        "active_promotional_offer_id": offer.get("id") if promotional else None,
    }


def _active(starts_at: str, expires_at: str | None, in_grace: bool, now: str) -> bool:
    return starts_at <= now and (expires_at is None or now < expires_at or in_grace)


def access_level_v1(
    level: dict[str, Any], subscriptions: dict[tuple[str, str], dict[str, Any]], now: str
) -> dict[str, Any]:
    chain = subscriptions.get((level["store"], level["store_original_transaction_id"]))
    revoked = level["cancellation_reason"] == "adapty_revoked"
    will_renew = bool(
        chain
        and chain["renew_status"]
        and chain["refunded_at"] is None
        and not revoked
        and level["expires_at"] == chain["expires_at"]
    )
    return {
        "id": level["access_level_id"],
        "is_active": _active(level["starts_at"], level["expires_at"], level["is_in_grace_period"], now),
        "is_lifetime": level["expires_at"] is None,
        "expires_at": level["expires_at"],
        "starts_at": level["starts_at"],
        "will_renew": will_renew,
        "vendor_product_id": level["store_product_id"],
        "base_plan_id": level["store_base_plan_id"],
        "vendor_transaction_id": level["store_transaction_id"],
        "vendor_original_transaction_id": level["store_original_transaction_id"],
        "store": level["store"],
        "activated_at": level["starts_at"],
        "renewed_at": level["purchased_at"],
        "unsubscribed_at": level["expires_at"] if revoked else level["renewal_cancelled_at"],
        "billing_issue_detected_at": level["billing_issue_detected_at"],
        "is_in_grace_period": level["is_in_grace_period"],
        **_offer_fields(level["offer"]),
        "cancellation_reason": level["cancellation_reason"],
    }


def subscription_v1(sub: dict[str, Any], level_id: str | None, now: str) -> dict[str, Any]:
    refunded = sub["refunded_at"] is not None
    expires_at = sub["refunded_at"] if refunded else sub["expires_at"]
    return {
        "id": level_id,
        "is_active": _active(sub["purchased_at"], expires_at, sub["is_in_grace_period"], now),
        "is_lifetime": expires_at is None,
        "expires_at": expires_at,
        "starts_at": sub["purchased_at"],
        "will_renew": bool(sub["renew_status"]) and not refunded,
        "vendor_product_id": sub["store_product_id"],
        "base_plan_id": sub["store_base_plan_id"],
        "vendor_transaction_id": sub["store_transaction_id"],
        "vendor_original_transaction_id": sub["store_original_transaction_id"],
        "store": sub["store"],
        "activated_at": sub["originally_purchased_at"],
        "renewed_at": sub["purchased_at"],
        "unsubscribed_at": None if sub["renew_status"] else sub["renew_status_changed_at"],
        "billing_issue_detected_at": sub["billing_issue_detected_at"],
        "is_in_grace_period": sub["is_in_grace_period"],
        **_offer_fields(sub["offer"]),
        "cancellation_reason": sub["cancellation_reason"],
        "is_sandbox": sub["environment"] == "Sandbox",
    }


def purchase_v1(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": item["purchase_id"],
        "vendor_product_id": item["store_product_id"],
        "base_plan_id": item["store_base_plan_id"],
        "vendor_transaction_id": item["store_transaction_id"],
        "vendor_original_transaction_id": item["store_original_transaction_id"],
        "store": item["store"],
        "purchased_at": item["purchased_at"],
        "is_one_time": True,
        "is_sandbox": item["environment"] == "Sandbox",
        "is_refund": item["is_refund"],
        "is_consumable": item["is_consumable"],
    }


def profile_v1(
    profile: dict[str, Any],
    state: dict[str, list[dict[str, Any]]],
    now: str,
    installation: dict[str, Any] | None = None,
    extended: bool = False,
) -> dict[str, Any]:
    """``{"data": v1 profile}`` from the same derived state the v2 profile shows."""
    chains = {(sub["store"], sub["store_original_transaction_id"]): sub for sub in state["subscriptions"]}
    level_of_chain = {
        (level["store"], level["store_original_transaction_id"]): level["access_level_id"]
        for level in state["access_levels"]
    }
    non_subscriptions: dict[str, list[dict[str, Any]]] = {}
    for item in state["non_subscriptions"]:
        non_subscriptions.setdefault(item["store_product_id"], []).append(purchase_v1(item))
    attributes = profile["custom_attributes"]
    data = {
        "app_id": str(profile["app_id"]),
        "profile_id": str(profile["id"]),
        "customer_user_id": profile["customer_user_id"],
        "total_revenue_usd": float(profile["total_revenue_usd"] or 0),
        "paid_access_levels": {
            level["access_level_id"]: access_level_v1(level, chains, now) for level in state["access_levels"]
        },
        "subscriptions": {
            sub["store_product_id"]: subscription_v1(sub, level_of_chain.get(key), now) for key, sub in chains.items()
        },
        "non_subscriptions": non_subscriptions or None,
        "custom_attributes": {key: attributes[key] for key in sorted(attributes)},
    }
    if extended:
        device = {} if profile["analytics_disabled"] else (installation or {})
        birthday = profile["birthday"]
        data.update(
            created_at=format_datetime(profile["created_at"]),
            email=profile["email"],
            phone_number=profile["phone_number"],
            att_status=profile["att_status"],
            first_name=profile["first_name"],
            last_name=profile["last_name"],
            username=None,
            gender=profile["gender"],
            birthday=birthday.isoformat() if birthday else None,
            idfa=device.get("idfa"),
            idfv=device.get("idfv"),
            advertising_id=device.get("advertising_id"),
            **{name: (profile["integration_ids"] or {}).get(name) for name in INTEGRATION_IDS},
        )
    return {"data": data}


def _pointer(source: str | None) -> str:
    """Where in a JSON:API request document an error's source is: a field named alone is one of
    ``data.attributes``; an error of no one field points at ``/data``."""
    if source in (None, NON_FIELD):
        return "/data"
    path = source.split(".")
    if path[0] != "data":
        path = ["data", "attributes", *path]
    return "/" + "/".join(path)


def json_api_errors(error: ApiError) -> dict[str, Any]:
    """The error in JSON:API's shape, as Stripe validation answers its errors."""
    return {
        "errors": [
            {"detail": message, "source": {"pointer": _pointer(source)}, "status": str(error.status)}
            for source, messages in error.errors
            for message in messages
        ]
    }
