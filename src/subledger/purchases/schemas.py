"""Request bodies of the purchase endpoints."""

import math
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, PlainValidator, StrictBool, StringConstraints, WithJsonSchema
from pydantic_core import PydanticCustomError

from subledger.core.dates import DateTimeField
from subledger.core.fields import Country, Currency, NonEmpty255, Str255, Strict, text

OfferCategory = Literal["introductory", "promotional", "offer_code", "win_back"]
OfferType = Literal["free_trial", "pay_as_you_go", "pay_up_front", "unknown"]
CancellationReason = Literal[
    "voluntarily_cancelled",
    "billing_error",
    "price_increase",
    "product_was_not_available",
    "refund",
    "cancelled_by_developer",
    "new_subscription_replace",
    "upgraded",
    "unknown",
    "adapty_revoked",
]
MAX_PRICE = Decimal("1e12")
MICRO = Decimal("0.000001")  # amounts are kept to millionths


def _amount(value: Any) -> Decimal:
    """A JSON number, kept exact: 9.99 stays 9.99, never a binary float."""
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        raise PydanticCustomError("base_error", "A valid number is required.")
    if isinstance(value, float) and not math.isfinite(value):
        raise PydanticCustomError("base_error", "A finite number is required.")
    amount = Decimal(str(value))
    if amount < 0 or amount >= MAX_PRICE:
        raise PydanticCustomError("base_error", "The price must be zero or more, and less than 10^12.")
    return amount.quantize(MICRO, rounding=ROUND_HALF_EVEN)


Amount = Annotated[Decimal, PlainValidator(_amount), WithJsonSchema({"type": "number", "minimum": 0})]


# The contract's limit: longer ids (PayPal's, some custom stores') are to be trimmed or hashed.
TransactionId = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=50), AfterValidator(text)]


class Offer(Strict):
    category: OfferCategory
    type: OfferType
    id: Str255 | None = None


class Price(Strict):
    country: Country
    currency: Currency
    value: Amount


# The fields only a subscription has; absent for a one-time purchase.
SUBSCRIPTION_FIELDS = (
    "originally_purchased_at",
    "expires_at",
    "renew_status",
    "renew_status_changed_at",
    "billing_issue_detected_at",
    "grace_period_expires_at",
)
REQUIRED_FOR_SUBSCRIPTION = ("originally_purchased_at", "expires_at", "renew_status")


class TransactionIn(Strict):
    """A subscription or one-time purchase, as ``purchase/set/transaction/`` takes it."""

    purchase_type: Literal["subscription", "one_time_purchase"]
    store: NonEmpty255
    environment: Literal["Sandbox", "Production"] = "Production"
    store_product_id: NonEmpty255
    store_base_plan_id: Str255 | None = None
    store_transaction_id: TransactionId
    store_original_transaction_id: NonEmpty255
    offer: Offer | None = None
    is_family_shared: StrictBool = False
    price: Price
    purchased_at: DateTimeField
    refunded_at: DateTimeField | None = None
    cancellation_reason: CancellationReason | None = None
    variation_id: Str255 | None = None
    # Subscription only (required there, see rules.check_transaction).
    # Absent: None; an explicit null is refused (the type has no None).
    originally_purchased_at: DateTimeField = None  # type: ignore[assignment]
    expires_at: DateTimeField | None = None
    renew_status: StrictBool = None  # type: ignore[assignment]
    renew_status_changed_at: DateTimeField | None = None
    billing_issue_detected_at: DateTimeField | None = None
    grace_period_expires_at: DateTimeField | None = None


class StoreTransaction(TransactionIn):
    """A transaction as a store's own account gives it (a notification, a validated receipt), with
    what set transaction does not take; none of it is kept from an earlier account."""

    store_purchase_token: Annotated[str, StringConstraints(max_length=4096)] | None = None  # Google Play's
    paused_at: DateTimeField | None = None  # a Play subscription paused (access ends at its expiry)
    deferred_at: DateTimeField | None = None  # when the store last put the renewal off (expiry moved on)


class GrantIn(Strict):
    access_level_id: NonEmpty255
    starts_at: DateTimeField | None = None
    expires_at: DateTimeField | None = None


class RevokeIn(Strict):
    access_level_id: NonEmpty255
    revoke_at: DateTimeField | None = None
