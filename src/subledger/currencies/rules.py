"""What a virtual currency transaction may hold, and the balances it leaves. No I/O."""

import os
import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from uuid import UUID

from subledger.core.errors import ApiError, bad_request

CODE = re.compile(r"[A-Za-z0-9_]{1,30}")
MAX_ITEMS = 20
METADATA_KEY = re.compile(r"[a-z0-9_]{1,30}")
MAX_METADATA_KEYS = 5
MAX_METADATA_VALUE = 200
# Balances and amounts are the contract's int32.
MAX_BALANCE = 2**31 - 1
# Where a transaction came from, as the contract names it.
API = "api_transaction"
DASHBOARD = "dashboard_transaction"
PURCHASE = "store_purchase"
RENEWAL = "subscription_renewal"
REFUND = "refund"
SOURCES = (PURCHASE, RENEWAL, "trial_start", API, DASHBOARD, REFUND, "expiry")


class CurrencyError(ValueError):
    """An admin request about currencies that cannot be carried out (the message says why)."""


def feature_not_enabled() -> ApiError:
    return ApiError.one(
        403,
        "feature_not_enabled",
        None,
        "Server API for virtual currencies is not enabled for this app. Turn it on with `subledger currencies enable`.",
    )


def checked_code(code: str) -> str:
    """A currency's code as an app names it (CurrencyError for one the contract does not allow)."""
    if not CODE.fullmatch(code):
        raise CurrencyError("a currency code is 1 to 30 ASCII letters, digits or underscores")
    return code


def parsed_grants(texts: Iterable[str]) -> list[tuple[str, int]]:
    """A product's credits as an operator writes them: ``CODE=AMOUNT`` each, amounts above 0."""
    grants = []
    for text in texts:
        code, _, amount = text.partition("=")
        if not amount.isdigit() or not 0 < int(amount) <= MAX_BALANCE:
            raise CurrencyError(f"{text!r}: give CODE=AMOUNT, a whole amount above 0")
        grants.append((code, int(amount)))
    return grants


def checked_items(items: Iterable[tuple[str, int]]) -> list[tuple[str, int]]:
    """A request's (currency_code, amount) items, each currency once and no amount zero: the
    contract's 400 for the first that is not."""
    items = list(items)
    if not items:
        raise bad_request("empty_items", "items", "At least one item is required.")
    seen: set[str] = set()
    for code, amount in items:
        if amount == 0:
            raise bad_request("amount_zero", "amount", f"The amount for currency {code} cannot be zero.")
        if code in seen:
            raise bad_request("duplicate_currency", "currency_code", f"Currency {code} appears more than once.")
        seen.add(code)
    return items


def unknown_currency(code: str) -> ApiError:
    return bad_request("unknown_currency", "currency_code", f"Unknown currency {code}")


def balances_after(balances: Mapping[str, int], items: Iterable[tuple[str, int]]) -> dict[str, int]:
    """The balances once ``items`` are applied (a missing balance is 0): the contract's 400
    when one would go below zero or past what an int32 holds."""
    after = {}
    for code, amount in items:
        balance = balances.get(code, 0) + amount
        if balance < 0:
            raise bad_request("insufficient_balance", "currency_code", f"Insufficient balance for currency {code}")
        if balance > MAX_BALANCE:
            raise bad_request(
                "balance_overflow", "currency_code", f"The balance of currency {code} would exceed {MAX_BALANCE}."
            )
        after[code] = balance
    return after


def transaction_id(now: datetime) -> UUID:
    """A UUID v7 (RFC 9562): its first 48 bits are the time in milliseconds, so ids sort as
    the transactions were made, as the reference's do."""
    millis = int(now.timestamp() * 1000)
    value = (millis & (2**48 - 1)) << 80 | int.from_bytes(os.urandom(10)) & ((1 << 80) - 1)
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # the RFC's variant
    return UUID(int=value)
