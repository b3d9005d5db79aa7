"""Field types that several request schemas share."""

import ipaddress
import re
import uuid
from typing import Annotated, Any

import email_validator
import orjson
import pycountry
from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints, WithJsonSchema
from pydantic_core import PydanticCustomError

from subledger.core.strict_json import nesting


def text(value: str) -> str:
    """Text fields never hold NUL characters (PostgreSQL cannot store them)."""
    if "\x00" in value:
        raise PydanticCustomError("base_error", "Null characters are not allowed.")
    return value


_WHOLE_NUMBER = re.compile(r"[0-9]{1,19}")


def whole_number(text: str, low: int, high: int) -> int | None:
    """``text`` (ASCII digits, as in a query string) as a number from ``low`` to ``high``, else
    None. Not str.isdigit(): it takes "²", which int() then refuses."""
    if not _WHOLE_NUMBER.fullmatch(text) or not low <= int(text) <= high:
        return None
    return int(text)


# Free-form JSON (remote configs, audience rule values) is stored and answered through orjson,
# which stops at 254 levels: well short of that, a limit that says what is wrong.
MAX_NESTING = 32


def storable(value: Any) -> Any:
    """``value`` if a JSON column can keep it and orjson answer it (see MAX_NESTING)."""
    if nesting(value) > MAX_NESTING:
        raise PydanticCustomError(
            "base_error", "Objects and arrays may nest at most {limit} levels deep.", {"limit": MAX_NESTING}
        )
    try:
        orjson.dumps(value)
    except orjson.JSONEncodeError:  # the one thing left that it cannot write: an integer wider than 64 bits
        raise PydanticCustomError(
            "base_error", "Integers may be at most 64 bits wide (from -2^63 to 2^64 - 1)."
        ) from None
    return value


FreeJson = Annotated[Any, AfterValidator(storable)]
Str255 = Annotated[str, StringConstraints(strict=True, max_length=255), AfterValidator(text)]
NonEmpty255 = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=255), AfterValidator(text)]


class Strict(BaseModel):
    """A request object: its fields strictly typed, fields it does not know ignored, as the
    reference's framework (Django REST framework) ignores them, so that a client written for a
    newer revision of the contract keeps working."""

    model_config = ConfigDict(extra="ignore")


def _country(value: str) -> str:
    code = value.upper()
    if len(code) != 2 or pycountry.countries.get(alpha_2=code) is None:
        raise PydanticCustomError(
            "invalid_enumeration_member", "`{value}` is not an ISO 3166-1 alpha-2 country code.", {"value": value}
        )
    return code


def _currency(value: str) -> str:
    code = value.upper()
    if len(code) != 3 or pycountry.currencies.get(alpha_3=code) is None:
        raise PydanticCustomError(
            "invalid_enumeration_member", "`{value}` is not an ISO 4217 currency code.", {"value": value}
        )
    return code


Country = Annotated[str, StringConstraints(strict=True), AfterValidator(_country)]
Currency = Annotated[str, StringConstraints(strict=True), AfterValidator(_currency)]


def _email(value: str) -> str:
    """An address as sent (not normalised), if it is one; its domain need not resolve."""
    try:
        email_validator.validate_email(value, check_deliverability=False, globally_deliverable=False)
    except email_validator.EmailNotValidError:
        raise PydanticCustomError("base_error", "Enter a valid email address.") from None
    return value


def _uuid_text(value: str) -> str:
    try:
        uuid.UUID(value)
    except ValueError:
        raise PydanticCustomError("base_error", "Must be a valid UUID.") from None
    return value


def _ipv4(value: str) -> str:
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        raise PydanticCustomError("base_error", "Enter a valid IPv4 address.") from None
    return value


# Kept as the client wrote them, once they are what the contract's format says.
Email = Annotated[Str255, AfterValidator(_email), WithJsonSchema({"type": "string", "format": "email"})]
UuidText = Annotated[Str255, AfterValidator(_uuid_text), WithJsonSchema({"type": "string", "format": "uuid"})]
IPv4 = Annotated[Str255, AfterValidator(_ipv4), WithJsonSchema({"type": "string", "format": "ipv4"})]
