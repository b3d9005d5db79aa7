"""What every store's notification comes down to, and how it meets the ledger. Pure: no I/O."""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, get_args

from subledger.core.dates import format_datetime

# The stores subledger hears from itself (notifications, and their APIs).
ConnectedStore = Literal["app_store", "play_store", "stripe", "paddle"]
CONNECTED_STORES = get_args(ConnectedStore)

# What a store may not say about a transaction it reports, and the ledger may already know:
# a refund seen earlier, when renewal was switched off, a billing issue, the paywall variation.
KEPT_FROM_LEDGER = (
    "refunded_at",
    "cancellation_reason",
    "renew_status_changed_at",
    "billing_issue_detected_at",
    "grace_period_expires_at",
    "variation_id",
)
SUBSCRIPTION_ONLY = {"renew_status_changed_at", "billing_issue_detected_at", "grace_period_expires_at"}


# Currencies that stores count in whole units (no cents): the rest are counted in hundredths.
ZERO_DECIMAL = {
    "BIF",
    "CLP",
    "DJF",
    "GNF",
    "JPY",
    "KMF",
    "KRW",
    "MGA",
    "PYG",
    "RWF",
    "UGX",
    "VND",
    "VUV",
    "XAF",
    "XOF",
    "XPF",
}


def from_minor_units(minor: int, currency: str) -> float:
    """An amount a store gives in the currency's smallest unit (cents), in the currency's units."""
    return float(minor) if currency.upper() in ZERO_DECIMAL else minor / 100


# What reading a store's payload raises when a field is missing or not of the type the store
# documents (JSON that is not an object has no ``get``, a list may be empty, an amount that is
# not a number is a decimal.InvalidOperation).
UNREADABLE = (LookupError, TypeError, ValueError, AttributeError, ArithmeticError)


@dataclass(frozen=True)
class Notification:
    """A verified store notification, normalised.

    ``transactions`` are the store's account of the transactions it concerns, as
    set-transaction bodies; ``refunds`` maps store transaction ids to when they
    were refunded. ``original_transaction_id`` (the subscription chain) and
    ``account`` (the app's own id of the user: App Store app account token,
    Play obfuscated account id, Stripe metadata customer_user_id) find the profile.
    """

    store: str
    notification_id: str
    kind: str
    signed_at: datetime
    original_transaction_id: str | None = None
    account: str | None = None
    transactions: list[dict[str, Any]] = field(default_factory=list)
    refunds: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.account is not None and not isinstance(self.account, str):
            raise TypeError(f"the account is {type(self.account).__name__}, not text")
        # No customer_user_id is longer (a Stripe metadata value can be): such an account names nobody.
        if self.account is not None and len(self.account) > 255:
            object.__setattr__(self, "account", None)  # frozen: built whole, so that these checks hold

    @property
    def changes_ledger(self) -> bool:
        return bool(self.transactions or self.refunds)


def merge(body: dict[str, Any], existing: dict[str, Any] | None) -> dict[str, Any]:
    """The store's account of a transaction laid over the ledger's row of it.

    Fields the store leaves out keep the ledger's value. A refund the ledger
    knows stays one unless the store's account says otherwise (an App Store
    refund reversal sends ``refunded_at: null``).
    """
    if existing is None:
        return body
    merged = dict(body)
    for key in KEPT_FROM_LEDGER:
        if key in body or existing[key] is None:
            continue
        if key in SUBSCRIPTION_ONLY and body["purchase_type"] != "subscription":
            continue
        value = existing[key]
        merged[key] = format_datetime(value) if isinstance(value, datetime) else value
    # A refund and its reason go together (the set-transaction rules insist).
    if merged.get("refunded_at") is not None:
        merged["cancellation_reason"] = "refund"
    elif merged.get("cancellation_reason") == "refund":
        merged["cancellation_reason"] = None
    return merged
