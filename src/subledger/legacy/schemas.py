"""Request bodies of the legacy API v1."""

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, StrictBool, model_validator
from pydantic_core import PydanticCustomError

from subledger.core.dates import DateField, DateTimeField, format_datetime
from subledger.core.fields import Country, Currency, Email, NonEmpty255, Str255, Strict
from subledger.profiles.schemas import AttributeKey, AttributeValue, ProfileFields
from subledger.purchases.schemas import Amount

MAX_V1_ATTRIBUTES = 10


class V1Attributes(Strict):
    """The profile fields of v1: each nullable, as v1 documents them."""

    ip_country: Country | None = None
    email: Email | None = None
    phone_number: Str255 | None = None
    first_name: Str255 | None = None
    last_name: Str255 | None = None
    gender: Literal["f", "m", "o"] | None = None
    birthday: DateField | None = None
    custom_attributes: Annotated[dict[AttributeKey, AttributeValue], Field(max_length=MAX_V1_ATTRIBUTES)] = None  # type: ignore[assignment]

    def profile_fields(self) -> ProfileFields:
        """The same change, as the v2 profile fields."""
        sent = {name: getattr(self, name) for name in self.model_fields_set if name in V1Attributes.model_fields}
        if "custom_attributes" in sent:
            sent["custom_attributes"] = [{"key": k, "value": v} for k, v in (sent["custom_attributes"] or {}).items()]
            if not sent["custom_attributes"]:
                del sent["custom_attributes"]
        return ProfileFields.model_validate(sent)


class V1Create(V1Attributes):
    customer_user_id: NonEmpty255


class V1Grant(Strict):
    """A v1 grant: ``is_lifetime`` true wins, then ``expires_at``, then ``duration_days``; an
    ``expires_at`` of null and a ``duration_days`` of 0 or null count as not given."""

    is_lifetime: StrictBool | None = None
    expires_at: DateTimeField | None = None
    duration_days: Annotated[int, Field(strict=True, ge=0, le=36500)] | None = None
    starts_at: DateTimeField | None = None
    vendor_product_id: NonEmpty255 = "adapty_server_side_product"
    base_plan_id: Str255 | None = None
    vendor_original_transaction_id: NonEmpty255 | None = None
    vendor_transaction_id: NonEmpty255 | None = None
    store: NonEmpty255 = "adapty"
    introductory_offer_type: Literal["free_trial", "pay_as_you_go", "pay_up_front"] | None = None
    price: Amount | None = None
    price_locale: Currency = "USD"
    proceeds: Amount | None = None
    is_sandbox: StrictBool = False

    @model_validator(mode="after")
    def _needs_an_end(self) -> "V1Grant":
        if not self.is_lifetime and self.expires_at is None and not self.duration_days:
            raise PydanticCustomError("value_error", "One of is_lifetime, expires_at or duration_days is required.")
        return self

    def records_transaction(self) -> bool:
        """A transaction is recorded when product, transaction and store are all named."""
        return {"vendor_product_id", "vendor_transaction_id", "store"} <= self.model_fields_set

    def transaction(self, purchased_at: datetime) -> dict[str, Any]:
        """The recorded purchase. v1 has no store country; prices are taken as sold in the US."""
        offer = None
        if self.introductory_offer_type is not None:
            offer = {"category": "introductory", "type": self.introductory_offer_type, "id": None}
        return {
            "purchase_type": "one_time_purchase",
            "store": self.store,
            "environment": "Sandbox" if self.is_sandbox else "Production",
            "store_product_id": self.vendor_product_id,
            "store_base_plan_id": self.base_plan_id,
            "store_transaction_id": self.vendor_transaction_id,
            "store_original_transaction_id": self.vendor_original_transaction_id or self.vendor_transaction_id,
            "offer": offer,
            "price": {"country": "US", "currency": self.price_locale, "value": float(self.price or 0)},
            "purchased_at": format_datetime(purchased_at),
        }

    def source(self) -> dict[str, Any]:
        """What the granted access level shows it stands for."""
        return {
            "store": self.store,
            "store_product_id": self.vendor_product_id,
            "store_base_plan_id": self.base_plan_id,
            "store_transaction_id": self.vendor_transaction_id,
            "store_original_transaction_id": self.vendor_original_transaction_id or self.vendor_transaction_id,
            "environment": "Sandbox" if self.is_sandbox else "Production",
        }


class V1Revoke(Strict):
    is_refund: StrictBool


class StripeAttributes(Strict):
    customer_user_id: NonEmpty255
    stripe_token: NonEmpty255


class StripeData(Strict):
    type: Literal["stripe_receipt_validation_result"]
    attributes: StripeAttributes


class StripeValidation(Strict):
    """The JSON:API body of ``purchase/stripe/token/validate/``."""

    data: StripeData
