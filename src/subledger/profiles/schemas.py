"""Request models of the profile endpoints and the Profile object on the wire."""

import math
import re
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AfterValidator, BaseModel, Field, PlainValidator, StrictBool, StringConstraints, WithJsonSchema
from pydantic_core import PydanticCustomError

from subledger.core.dates import DateField, rfc3339
from subledger.core.fields import Country, Email, IPv4, Str255, Strict, UuidText, text

ATTRIBUTE_KEY = re.compile(r"[A-Za-z0-9._-]{1,30}")
MAX_ATTRIBUTE_VALUE_LENGTH = 50
Store = Literal["app_store", "play_store", "stripe", "adapty", "paddle"]
Platform = Literal["iOS", "macOS", "iPadOS", "Android", "visionOS", "web"]


def _attribute_key(value: Any) -> str:
    if not isinstance(value, str) or not ATTRIBUTE_KEY.fullmatch(value):
        raise PydanticCustomError("base_error", "Key must be 1 to 30 characters of letters, digits, '.', '_' or '-'.")
    return value


def _attribute_value(value: Any) -> str | float | None:
    """A string of at most 50 characters or a number; booleans and integers become floats."""
    if value is None or isinstance(value, str):
        if value is not None and len(value) > MAX_ATTRIBUTE_VALUE_LENGTH:
            raise PydanticCustomError(
                "base_error", "Value must be at most {limit} characters long.", {"limit": MAX_ATTRIBUTE_VALUE_LENGTH}
            )
        return value if value is None else text(value)
    if isinstance(value, (bool, int, float)):
        number = float(value)
        if not math.isfinite(number):
            raise PydanticCustomError("base_error", "Value must be a finite number.")
        return number
    raise PydanticCustomError("base_error", "Value must be a string, a number or null.")


AttributeKey = Annotated[
    str, PlainValidator(_attribute_key), WithJsonSchema({"type": "string", "pattern": ATTRIBUTE_KEY.pattern})
]
AttributeValue = Annotated[
    str | float | None,
    PlainValidator(_attribute_value),
    WithJsonSchema(
        {"anyOf": [{"type": "string", "maxLength": MAX_ATTRIBUTE_VALUE_LENGTH}, {"type": "number"}, {"type": "null"}]}
    ),
]


def _att_status(value: Any) -> int:
    if isinstance(value, bool) or value not in (0, 1, 2, 3):
        raise PydanticCustomError("invalid_enumeration_member", "Must be one of 0, 1, 2 or 3.")
    return int(value)


# Apple's App Tracking Transparency status: 0 not determined, 1 restricted, 2 denied, 3 authorized.
AttStatus = Annotated[int, PlainValidator(_att_status), WithJsonSchema({"type": "integer", "enum": [0, 1, 2, 3]})]
# User agents outgrow the 255 characters of the other device fields.
UserAgent = Annotated[str, StringConstraints(strict=True, max_length=1024), AfterValidator(text)]


class CustomAttribute(Strict):
    key: AttributeKey
    value: AttributeValue


class InstallationMeta(Strict):
    device_id: UuidText
    device: Str255 | None = None
    locale: Str255 | None = None
    os: Str255 | None = None
    platform: Platform | None = None
    timezone: Str255 | None = None
    user_agent: UserAgent | None = None
    app_build: Str255 | None = None
    app_version: Str255 | None = None
    adapty_sdk_version: Str255 | None = None
    idfa: Str255 | None = None
    idfv: Str255 | None = None
    advertising_id: Str255 | None = None
    android_id: Str255 | None = None
    android_app_set_id: Str255 | None = None


class ProfileFields(Strict):
    """The body of create and update (the contract's ProfileRequest). Only the fields sent are
    applied; null clears a field, but for ``analytics_disabled``, which it leaves as it is.

    Fields typed without ``None`` are optional but may not be null.
    """

    first_name: Str255 | None = None
    last_name: Str255 | None = None
    gender: Literal["f", "m", "o"] | None = None
    email: Email | None = None
    phone_number: Str255 | None = None
    birthday: DateField | None = None
    ip_country: Country | None = None
    ip_v4_address: IPv4 | None = None
    store_country: Str255 | None = None
    store: Store | None = None
    store_account_token: UUID | None = None
    att_status: AttStatus | None = None
    analytics_disabled: StrictBool | None = None
    # Absent: unchanged; an explicit null is refused (the types have no None).
    custom_attributes: Annotated[list[CustomAttribute], Field(max_length=100)] = None  # type: ignore[assignment]
    installation_meta: InstallationMeta = None  # type: ignore[assignment]

    def sent(self) -> dict[str, Any]:
        """The plain profile columns the request sets (attributes and meta aside)."""
        return {
            name: getattr(self, name)
            for name in self.model_fields_set
            if name not in {"custom_attributes", "installation_meta"}
            and not (name == "analytics_disabled" and self.analytics_disabled is None)
        }


# The third-party ids a profile may carry, in the contract's order.
INTEGRATION_IDS = (
    "adjust_device_id",
    "airbridge_device_id",
    "amplitude_device_id",
    "amplitude_user_id",
    "appmetrica_device_id",
    "appmetrica_profile_id",
    "appsflyer_id",
    "branch_id",
    "facebook_anonymous_id",
    "firebase_app_instance_id",
    "mixpanel_user_id",
    "one_signal_player_id",
    "one_signal_subscription_id",
    "posthog_distinct_user_id",
    "pushwoosh_hwid",
    "tenjin_analytics_installation_id",
)


class IntegrationIdsIn(Strict):
    """The ids to set: those sent replace the profile's (null removes one), the others stay."""

    adjust_device_id: Str255 | None = None
    airbridge_device_id: Str255 | None = None
    amplitude_device_id: Str255 | None = None
    amplitude_user_id: Str255 | None = None
    appmetrica_device_id: Str255 | None = None
    appmetrica_profile_id: Str255 | None = None
    appsflyer_id: Str255 | None = None
    branch_id: Str255 | None = None
    facebook_anonymous_id: Str255 | None = None
    firebase_app_instance_id: Str255 | None = None
    mixpanel_user_id: Str255 | None = None
    one_signal_player_id: Str255 | None = None
    one_signal_subscription_id: Str255 | None = None
    posthog_distinct_user_id: Str255 | None = None
    pushwoosh_hwid: Str255 | None = None
    tenjin_analytics_installation_id: Str255 | None = None

    def sent(self) -> dict[str, str | None]:
        return {name: getattr(self, name) for name in INTEGRATION_IDS if name in self.model_fields_set}


def integration_ids_object(stored: dict[str, str] | None) -> dict[str, str | None]:
    """Every id of the contract, null for those the profile has not."""
    stored = stored or {}
    return {name: stored.get(name) for name in INTEGRATION_IDS}


class CustomAttributeOut(BaseModel):
    key: str
    value: str | float


class ProfileOut(BaseModel):
    """The Profile object, documented for OpenAPI; responses are built as dicts in this order."""

    app_id: str
    profile_id: str
    customer_user_id: str | None
    total_revenue_usd: float
    segment_hash: str
    timestamp: int
    custom_attributes: list[CustomAttributeOut]
    access_levels: list[dict[str, Any]]
    subscriptions: list[dict[str, Any]]
    non_subscriptions: list[dict[str, Any]]


class ProfileEnvelope(BaseModel):
    data: ProfileOut


# The date-times of the Profile's objects, which v2 writes as RFC 3339 does.
LEVEL_DATES = (
    "starts_at",
    "purchased_at",
    "originally_purchased_at",
    "expires_at",
    "renewal_cancelled_at",
    "billing_issue_detected_at",
)
SUBSCRIPTION_DATES = (
    "purchased_at",
    "refunded_at",
    "originally_purchased_at",
    "expires_at",
    "renew_status_changed_at",
    "billing_issue_detected_at",
    "grace_period_expires_at",
)
PURCHASE_DATES = ("purchased_at",)


def _rfc3339_dates(items: list[dict[str, Any]], names: tuple[str, ...]) -> list[dict[str, Any]]:
    return [{**item, **{name: rfc3339(item[name]) for name in names}} for item in items]


def profile_object(
    profile: dict[str, Any], state: dict[str, list[dict[str, Any]]], segment_hash: str, timestamp: int
) -> dict[str, Any]:
    """``{"data": Profile}`` with the fields in the contract's order.

    ``state`` is the profile's derived purchases as rendered for this moment
    (``rules.render_state``).
    """
    attributes = profile["custom_attributes"]
    return {
        "data": {
            "app_id": str(profile["app_id"]),
            "profile_id": str(profile["id"]),
            "customer_user_id": profile["customer_user_id"],
            "total_revenue_usd": float(profile["total_revenue_usd"] or 0),
            "segment_hash": segment_hash,
            "timestamp": timestamp,
            "custom_attributes": [{"key": key, "value": attributes[key]} for key in sorted(attributes)],
            "access_levels": _rfc3339_dates(state["access_levels"], LEVEL_DATES),
            "subscriptions": _rfc3339_dates(state["subscriptions"], SUBSCRIPTION_DATES),
            "non_subscriptions": _rfc3339_dates(state["non_subscriptions"], PURCHASE_DATES),
        }
    }
