"""Field types that several request schemas share."""

from typing import Annotated

import pycountry
from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints
from pydantic_core import PydanticCustomError


def text(value: str) -> str:
    """Text fields never hold NUL characters (PostgreSQL cannot store them)."""
    if "\x00" in value:
        raise PydanticCustomError("base_error", "Null characters are not allowed.")
    return value


Str255 = Annotated[str, StringConstraints(strict=True, max_length=255), AfterValidator(text)]
NonEmpty255 = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=255), AfterValidator(text)]


class Strict(BaseModel):
    """Request objects refuse unknown fields."""

    model_config = ConfigDict(extra="forbid")


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
