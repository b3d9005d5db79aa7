"""Export Analytics API request bodies, as the contract's schemas name them."""

from datetime import date
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, model_validator
from pydantic_core import PydanticCustomError

from subledger.core.dates import EARLIEST_DAY, LATEST_DAY
from subledger.core.fields import Str255, Strict

Format = Literal["json", "csv"]
PeriodUnit = Literal["day", "week", "month", "quarter", "year"]
DateType = Literal["purchase_date", "profile_install_date"]
ChartId = Literal[
    "revenue",
    "mrr",
    "arr",
    "arppu",
    "subscriptions_active",
    "subscriptions_new",
    "subscriptions_renewal_cancelled",
    "subscriptions_expired",
    "trials_active",
    "trials_new",
    "trials_renewal_cancelled",
    "trials_expired",
    "grace_period",
    "billing_issue",
    "refund_events",
    "refund_money",
    "non_subscriptions",
    "arpu",
    "installs",
]
# What an answer can be split by: a transaction's own fields, or its profile's latest attribution.
Segmentation = Literal[
    "store",
    "country",
    "store_product_id",
    "duration",
    "offer_category",
    "offer_type",
    "offer_id",
    "attribution_source",
    "attribution_status",
    "attribution_channel",
    "attribution_campaign",
    "attribution_adgroup",
    "attribution_adset",
    "attribution_creative",
]
Values = list[Str255]


def _day(value: object) -> date:
    if not isinstance(value, str):
        raise PydanticCustomError("datetime", "Dates are written YYYY-MM-DD.")
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise PydanticCustomError("datetime", "{value!r} is not a date written YYYY-MM-DD.", {"value": value}) from None
    if not EARLIEST_DAY <= day <= LATEST_DAY:
        raise PydanticCustomError(
            "datetime", "Dates run from {low} to {high}.", {"low": EARLIEST_DAY, "high": LATEST_DAY}
        )
    return day


Day = Annotated[date, BeforeValidator(_day)]
# A window: its first and last days (one day alone is that day).
Window = Annotated[list[Day], Field(min_length=1, max_length=2)]


class MetricsFilters(Strict):
    date: Window
    compare_date: Window | None = None
    store: Values | None = None
    country: Values | None = None
    store_product_id: Values | None = None
    duration: Values | None = None
    attribution_source: Values | None = None
    attribution_status: Values | None = None
    attribution_channel: Values | None = None
    attribution_campaign: Values | None = None
    attribution_adgroup: Values | None = None
    attribution_adset: Values | None = None
    attribution_creative: Values | None = None
    offer_category: Values | None = None
    offer_type: Values | None = None
    offer_id: Values | None = None

    @model_validator(mode="after")
    def _ordered(self) -> "MetricsFilters":
        for name in ("date", "compare_date"):
            window = getattr(self, name)
            if window is not None and window[0] > window[-1]:
                raise PydanticCustomError("value_error", "A window's first day must not follow its last.")
        return self

    def chosen(self) -> dict[str, set[str]]:
        """The filters given, each as the set of values it lets through (case kept as sent)."""
        skip = {"date", "compare_date"}
        return {name: set(values) for name, values in self if name not in skip and values}


class MetricsRequest(Strict):
    filters: MetricsFilters
    period_unit: PeriodUnit = "month"
    segmentation: Segmentation | None = None
    format: Format = "json"


class AnalyticsIn(MetricsRequest):
    chart_id: ChartId
    date_type: DateType = "purchase_date"


class CohortIn(MetricsRequest):
    period_type: Literal["renewals", "days"] = "renewals"
    value_type: Literal["absolute", "relative"] = "absolute"
    value_field: Literal["revenue", "arppu", "arpu", "arpas", "subscribers", "subscriptions"] = "revenue"
    accounting_type: Literal["revenue", "proceeds", "net_revenue"] = "revenue"
    renewal_days: list[Annotated[int, Field(ge=0, le=3650)]] | None = Field(default=None, max_length=100)
    prediction_months: Literal[3, 6, 9, 12, 18, 24] = 12


def _period_name(value: object) -> object:
    """A conversion state as a string: the document's example sends ``from_period`` as a number."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


State = Annotated[str, BeforeValidator(_period_name)]


class ConversionIn(MetricsRequest):
    from_period: State | None
    to_period: State
    date_type: DateType = "purchase_date"


class FunnelIn(MetricsRequest):
    show_value_as: Literal["absolute", "relative", "both"] = "absolute"


class LtvIn(MetricsRequest):
    period_type: Literal["renewals", "days"] = "renewals"


class RetentionIn(MetricsRequest):
    use_trial: bool = False


class PlacementFilters(Strict):
    placement_type: Literal["paywall", "onboarding"]


class PlacementInfoIn(Strict):
    """The contract's PlacementInfoRequest; ``format`` as the other operations take it."""

    filters: PlacementFilters
    format: Format = "json"
