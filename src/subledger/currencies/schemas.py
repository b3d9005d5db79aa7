"""Virtual currency request bodies: the contract's transaction, and the admin API's currencies."""

from typing import Annotated

from pydantic import AfterValidator, Field, StrictBool, StrictInt, StrictStr, StringConstraints, field_validator

from subledger.core.fields import NonEmpty255, Strict, text
from subledger.currencies import rules

Code = Annotated[str, StringConstraints(strict=True, pattern=rules.CODE.pattern)]


class ItemIn(Strict):
    currency_code: Annotated[str, StringConstraints(strict=True, min_length=1, max_length=255), AfterValidator(text)]
    amount: Annotated[StrictInt, Field(ge=-rules.MAX_BALANCE - 1, le=rules.MAX_BALANCE)]


class TransactionIn(Strict):
    """The contract's VirtualCurrencyTransactionRequest. ``items`` is checked for emptiness,
    zero amounts and repeated currencies by the rules, which answer those with codes of their own."""

    items: Annotated[list[ItemIn], Field(max_length=rules.MAX_ITEMS)]
    metadata: dict[StrictStr, StrictStr] | None = None

    @field_validator("metadata")
    @classmethod
    def _metadata(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        if value is None:
            return None
        if len(value) > rules.MAX_METADATA_KEYS:
            raise ValueError(f"At most {rules.MAX_METADATA_KEYS} keys.")
        for key, item in value.items():
            if not rules.METADATA_KEY.fullmatch(key):
                raise ValueError(f"Key {key!r} must match ^[a-z0-9_]{{1,30}}$.")
            if len(item) > rules.MAX_METADATA_VALUE or "\x00" in item:
                raise ValueError(f"The value of {key!r} must be at most {rules.MAX_METADATA_VALUE} characters.")
        return value


class CurrencyIn(Strict):
    code: Code
    name: NonEmpty255


class CurrencyChange(Strict):
    name: NonEmpty255


class SettingsIn(Strict):
    enabled: StrictBool


class GrantIn(Strict):
    currency_code: Code
    amount: Annotated[StrictInt, Field(gt=0, le=rules.MAX_BALANCE)]


class ProductGrantsIn(Strict):
    """What buying the product credits; an empty list credits nothing."""

    grants: list[GrantIn]
