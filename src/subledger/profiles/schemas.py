"""Request models of the profile endpoints and the Profile object on the wire."""

import math
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, PlainValidator, StrictBool, WithJsonSchema
from pydantic_core import PydanticCustomError

from subledger.core.dates import DateField
from subledger.core.fields import Country, NonEmpty255, Str255, Strict, text

ATTRIBUTE_KEY = re.compile(r"[A-Za-z0-9._-]{1,30}")
MAX_ATTRIBUTE_VALUE_LENGTH = 30


def _attribute_key(value: Any) -> str:
    if not isinstance(value, str) or not ATTRIBUTE_KEY.fullmatch(value):
        raise PydanticCustomError("base_error", "Key must be 1 to 30 characters of letters, digits, '.', '_' or '-'.")
    return value


def _attribute_value(value: Any) -> str | float | None:
    """A string of at most 30 characters or a number; booleans and integers become floats."""
    if value is None or isinstance(value, str):
        if value is not None and len(value) > MAX_ATTRIBUTE_VALUE_LENGTH:
            raise PydanticCustomError("base_error", "Value must be at most 30 characters long.")
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
    WithJsonSchema({"anyOf": [{"type": "string", "maxLength": 30}, {"type": "number"}, {"type": "null"}]}),
]


class CustomAttribute(Strict):
    key: AttributeKey
    value: AttributeValue


class InstallationMeta(Strict):
    device_id: NonEmpty255
    device: Str255 | None = None
    locale: Str255 | None = None
    os: Str255 | None = None
    platform: Str255 | None = None
    timezone: Str255 | None = None
    user_agent: Str255 | None = None
    idfa: Str255 | None = None
    idfv: Str255 | None = None
    advertising_id: Str255 | None = None
    android_id: Str255 | None = None
    android_app_set_id: Str255 | None = None


class ProfileFields(Strict):
    """The body of create and update. Only the fields sent are applied.

    Fields typed without ``None`` are optional but may not be null.
    """

    first_name: Str255 | None = None
    last_name: Str255 | None = None
    gender: Literal["f", "m", "o"] | None = None
    email: Str255 | None = None
    phone_number: Str255 | None = None
    birthday: DateField = None
    ip_country: Country = None
    store_country: Str255 | None = None
    store: NonEmpty255 | None = None
    analytics_disabled: StrictBool = None
    custom_attributes: Annotated[list[CustomAttribute], Field(min_length=1)] = None
    installation_meta: InstallationMeta = None

    def sent(self) -> dict[str, Any]:
        """The plain profile columns the request sets (attributes and meta aside)."""
        return {
            name: getattr(self, name)
            for name in self.model_fields_set
            if name not in {"custom_attributes", "installation_meta"}
        }


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


def profile_object(
    profile: dict[str, Any], state: dict[str, list], segment_hash: str, timestamp: int
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
            "access_levels": state["access_levels"],
            "subscriptions": state["subscriptions"],
            "non_subscriptions": state["non_subscriptions"],
        }
    }
