"""Date and date-time parsing and formatting in the contract's spellings."""

import re
from datetime import UTC, date, datetime
from typing import Annotated, Any, overload

from pydantic import PlainValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
# Date, "T" (or a space), time with optional fraction, then a required offset.
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2})", re.IGNORECASE)


@overload
def format_datetime(moment: datetime) -> str: ...
@overload
def format_datetime(moment: None) -> None: ...
def format_datetime(moment: datetime | None) -> str | None:
    """``2022-10-12T09:42:50.000000+0000``: microseconds, always UTC."""
    if moment is None:
        return None
    # isoformat ends in "+00:00"; it takes a third less time than strftime, and a response holds dozens.
    return moment.astimezone(UTC).isoformat(timespec="microseconds")[:-6] + "+0000"


def rfc3339(formatted: str | None) -> str | None:
    """A date-time of ``format_datetime`` (``+0000``, what the ledger keeps and v1 and webhooks
    answer) as RFC 3339 writes it (``+00:00``): the server-side API v2's ``date-time``."""
    return None if formatted is None else formatted[:-5] + "+00:00"


def from_timestamp(seconds: float) -> datetime:
    """The moment ``seconds`` after the epoch, in UTC; ValueError outside the years 1 to 9999."""
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError):  # which of the two depends on the platform and the size
        raise ValueError(f"{seconds} seconds after the epoch is outside the years 1 to 9999") from None


def parse_datetime(value: Any) -> datetime:
    """An ISO 8601 date-time with an offset (or an aware datetime), converted to UTC."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC)
    if not isinstance(value, str) or not _DATETIME.fullmatch(value):
        raise PydanticCustomError(
            "datetime",
            "Datetime has wrong format. Use ISO 8601 with an offset, e.g. 2022-10-12T09:42:50.000000+0000.",
        )
    try:
        return datetime.fromisoformat(value.upper()).astimezone(UTC)
    except (ValueError, OverflowError):  # OverflowError: the offset takes it past year 1 or 9999 in UTC
        raise PydanticCustomError("datetime", "Datetime is not a valid date.") from None


# The days a request may name, in a date-time or in the metrics' window: far enough from
# datetime's years 1 and 9999 that adding a product's period (up to 999 years) or a grant's days
# cannot overflow.
EARLIEST_DAY, LATEST_DAY = date(1970, 1, 1), date(2999, 12, 31)


def parse_instant(value: Any) -> datetime:
    """``parse_datetime``, on a day (in UTC) from EARLIEST_DAY to LATEST_DAY."""
    moment = parse_datetime(value)
    if not EARLIEST_DAY <= moment.date() <= LATEST_DAY:
        raise PydanticCustomError("datetime", f"Date-times run from {EARLIEST_DAY} to {LATEST_DAY}.")
    return moment


def parse_date(value: Any) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        raise PydanticCustomError("datetime", "Date has wrong format. Use YYYY-MM-DD.")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise PydanticCustomError("datetime", "Date is not a valid date.") from None


DateTimeField = Annotated[
    datetime,
    PlainValidator(parse_instant),
    WithJsonSchema({"type": "string", "format": "date-time", "example": "2022-10-12T09:42:50.000000+0000"}),
]
DateField = Annotated[date, PlainValidator(parse_date), WithJsonSchema({"type": "string", "format": "date"})]
