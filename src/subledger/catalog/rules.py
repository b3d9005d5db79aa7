"""Catalog rules: subscription periods and currency conversion. No I/O."""

import csv
import hashlib
import io
import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Any

from dateutil.relativedelta import relativedelta

LIFETIME = "lifetime"
PERIOD = re.compile(r"P(\d{1,3})([DWMY])")
_STEPS = {  # a period's unit: its step, for a count of them
    "D": lambda count: relativedelta(days=count),
    "W": lambda count: relativedelta(weeks=count),
    "M": lambda count: relativedelta(months=count),
    "Y": lambda count: relativedelta(years=count),
}


def is_period(value: str) -> bool:
    return value == LIFETIME or PERIOD.fullmatch(value) is not None


def period_end(start: datetime, period: str) -> datetime | None:
    """When access bought at ``start`` for ``period`` ends; None for lifetime."""
    if period == LIFETIME:
        return None
    found = PERIOD.fullmatch(period)
    if found is None:
        raise ValueError(f"{period!r} is not a period")
    count, unit = found.groups()
    moment: datetime = start + _STEPS[unit](int(count))
    return moment


@dataclass(frozen=True)
class Product:
    store: str
    store_product_id: str
    store_base_plan_id: str  # "" = every base plan
    access_level_id: str | None
    period: str
    is_consumable: bool
    # What buying it credits: (virtual currency code, amount) pairs.
    currency_grants: tuple[tuple[str, int], ...] = ()


class Catalog:
    """An app's products, looked up the way a transaction names them."""

    def __init__(self, products: list[Product]):
        self._by_key = {(p.store, p.store_product_id, p.store_base_plan_id): p for p in products}

    def product(self, store: str, store_product_id: str, store_base_plan_id: str | None) -> Product | None:
        """The product for a base plan, else the product for all its base plans."""
        if store_base_plan_id:
            found = self._by_key.get((store, store_product_id, store_base_plan_id))
            if found:
                return found
        return self._by_key.get((store, store_product_id, ""))


@dataclass(frozen=True)
class Rate:
    currency: str
    usd_per_unit: Decimal
    as_of: date


# What one transaction may be worth, in USD: the ledger adds such amounts up in 64-bit integers
# (nanodollars in the metric rollups, which hold 9.2 billion USD a row).
MAX_TRANSACTION_USD = Decimal(10_000_000)
# Real rates run from about 0.00001 (the Iranian rial) to 3.3 (the Kuwaiti dinar). A rate is
# kept exactly, as text of at most 40 characters.
MIN_RATE, MAX_RATE, MAX_RATE_TEXT = Decimal("1e-9"), Decimal(1000), 40


def parse_rates(text: str) -> list[Rate]:
    """``currency,usd_per_unit,as_of`` CSV -> rates; raises ValueError naming the bad line."""
    rates = []
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None or not {"currency", "usd_per_unit", "as_of"} <= set(reader.fieldnames):
        raise ValueError("the header must name currency,usd_per_unit,as_of")
    for line, row in enumerate(reader, start=2):
        try:
            currency = row["currency"].strip().upper()
            if not re.fullmatch(r"[A-Z]{3}", currency):
                raise ValueError(f"bad currency {row['currency']!r}")
            try:
                value = Decimal(row["usd_per_unit"].strip())
            except ArithmeticError:
                value = Decimal("NaN")
            if not value.is_finite() or not MIN_RATE <= value <= MAX_RATE or len(str(value)) > MAX_RATE_TEXT:
                bounds = f"from {MIN_RATE} to {MAX_RATE}, {MAX_RATE_TEXT} characters at most"
                raise ValueError(f"bad rate {row['usd_per_unit']!r} ({bounds})")
            rates.append(Rate(currency, value, date.fromisoformat(row["as_of"].strip())))
        except (ValueError, AttributeError) as exc:
            raise ValueError(f"line {line}: {exc}") from None
    return rates


@cache
def default_rates() -> tuple[Rate, ...]:
    """The dated table shipped with subledger (see README)."""
    return tuple(parse_rates(resources.files(__package__).joinpath("exchange_rates.csv").read_text()))


class Rates:
    """USD per unit of each currency: the shipped table overridden by loaded rates."""

    def __init__(self, loaded: list[Rate]):
        self._rates = {rate.currency: rate.usd_per_unit for rate in default_rates()}
        self._rates.update({rate.currency: rate.usd_per_unit for rate in loaded})

    @classmethod
    def of(cls, snapshot: dict[str, str]) -> "Rates":
        """The rates a ``snapshot()`` recorded, whatever the shipped table holds now."""
        rates = cls([])
        rates._rates = {currency: Decimal(value) for currency, value in snapshot.items()}
        return rates

    def snapshot(self) -> dict[str, str]:
        """Every rate, as exact text."""
        return {currency: str(value) for currency, value in sorted(self._rates.items())}

    def knows(self, currency: str) -> bool:
        return currency in self._rates

    def moved(self, other: "Rates") -> set[str]:
        """The currencies whose rate is not the same in ``other``."""
        currencies = self._rates.keys() | other._rates.keys()
        return {currency for currency in currencies if self._rates.get(currency) != other._rates.get(currency)}

    def to_usd(self, amount: Decimal, currency: str) -> Decimal:
        return amount * self._rates[currency]

    def digest(self) -> str:
        """A fingerprint of every rate: figures computed at other rates have another."""
        text = ";".join(f"{currency}={value.normalize():f}" for currency, value in sorted(self._rates.items()))
        return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Pricing:
    """The generation of exchange rates the ledger is priced at and, while profiles priced at
    the generation before remain, that generation's rates."""

    generation: int
    previous: Rates | None

    @classmethod
    def of(cls, record: dict[str, Any] | None) -> "Pricing":
        """The pricing a ledger_pricing row records (None: nothing priced yet)."""
        if record is None:
            return cls(0, None)
        previous = record["previous_rates"]
        return cls(record["generation"], None if previous is None else Rates.of(previous))

    def rates_of(self, profile: dict[str, Any], rates: Rates) -> Rates:
        """The rates the profile's USD figures were computed at, ``rates`` being those in force."""
        if self.previous is not None and profile["rates_generation"] < self.generation:
            return self.previous
        return rates
