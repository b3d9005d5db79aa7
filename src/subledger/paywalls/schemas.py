"""Paywall shapes: admin bodies, the contract's Paywall object and list query."""

from typing import Annotated, Any
from uuid import UUID

from pydantic import Field, StrictStr, model_validator
from pydantic_core import PydanticCustomError

from subledger.core.fields import FreeJson, NonEmpty255, Strict
from subledger.paywalls.rules import OPERATORS, PROFILE_FIELDS

Name = Annotated[str, Field(strict=True, min_length=1, max_length=255, pattern=r"^[A-Za-z0-9._:-]+$")]
Locale = Annotated[str, Field(strict=True, min_length=2, max_length=16, pattern=r"^[A-Za-z]{2,3}([_-][A-Za-z0-9]+)*$")]


class PaywallIn(Strict):
    name: NonEmpty255
    product_ids: Annotated[list[UUID], Field(max_length=50)] = []
    remote_configs: dict[Locale, dict[str, FreeJson]] = {}


class PaywallPatch(Strict):
    name: NonEmpty255 = None
    product_ids: Annotated[list[UUID], Field(max_length=50)] = None
    remote_configs: dict[Locale, dict[str, FreeJson]] = None
    is_archived: bool = None


class RemoteConfigItem(Strict):
    key: NonEmpty255
    value: StrictStr


class RemoteConfigPut(Strict):
    """The contract's PUT body: replaces the data of the default (English) remote config."""

    remote_configs: Annotated[list[RemoteConfigItem], Field(min_length=1)]


class Rule(Strict):
    field: Annotated[str, Field(strict=True, min_length=1, max_length=64)]
    op: str
    value: FreeJson = None

    @model_validator(mode="after")
    def _known(self) -> "Rule":
        if self.op not in OPERATORS:
            raise PydanticCustomError("invalid_enumeration_member", "Unknown operator `{op}`.", {"op": self.op})
        if self.field == "access_level":
            if self.op not in {"has", "has_not"} or not isinstance(self.value, str):
                raise PydanticCustomError("value_error", "access_level rules are `has` or `has_not` a level id.")
        elif self.field not in PROFILE_FIELDS and not self.field.startswith("custom_attribute."):
            raise PydanticCustomError("invalid_enumeration_member", "Unknown field `{field}`.", {"field": self.field})
        elif self.op in {"has", "has_not"}:
            raise PydanticCustomError("value_error", "`has` and `has_not` are for access_level rules.")
        elif self.op in {"in", "not_in"} and not isinstance(self.value, list):
            raise PydanticCustomError("value_error", "`in` and `not_in` take a list.")
        elif self.op in {"gt", "lt"} and (isinstance(self.value, bool) or not isinstance(self.value, (int, float))):
            raise PydanticCustomError("value_error", "`gt` and `lt` take a number.")
        return self


class AudienceIn(Strict):
    audience_id: Name
    rules: Annotated[list[Rule], Field(min_length=1, max_length=50)]


class VariationIn(Strict):
    paywall_id: UUID
    weight: Annotated[int, Field(strict=True, ge=1, le=100)]


class AbTestIn(Strict):
    name: NonEmpty255
    variations: Annotated[list[VariationIn], Field(min_length=2, max_length=10)]


class TargetIn(Strict):
    audience_id: Name | None = None
    paywall_id: UUID | None = None
    ab_test_id: UUID | None = None

    @model_validator(mode="after")
    def _one(self) -> "TargetIn":
        if (self.paywall_id is None) == (self.ab_test_id is None):
            raise PydanticCustomError("value_error", "A target shows either one paywall_id or one ab_test_id.")
        return self


class PlacementIn(Strict):
    placement_id: Name
    targets: Annotated[list[TargetIn], Field(max_length=50)]


class ViewIn(Strict):
    variation_id: UUID
    paywall_id: UUID


def product_object(product: dict[str, Any]) -> dict[str, Any]:
    """A paywall's product with the eligibility defaults that hold without a profile."""
    return {
        "title": product["title"],
        "is_consumable": product["is_consumable"],
        "adapty_product_id": str(product["id"]),
        "vendor_product_id": product["store_product_id"],
        "introductory_offer_eligibility": not product["is_consumable"],
        "promotional_offer_eligibility": False,
        "base_plan_id": product["store_base_plan_id"] or None,
        "offer": None,
    }


def paywall_object(
    paywall: dict[str, Any],
    products: dict[str, dict],
    placement_id: str | None,
    variation_id: str,
    ab_test_name: str | None,
    config: dict | None,
) -> dict[str, Any]:
    return {
        "placement_id": placement_id,
        "variation_id": variation_id,
        "paywall_id": str(paywall["id"]),
        "ab_test_name": ab_test_name,
        "paywall_name": paywall["name"],
        "products": [product_object(products[pid]) for pid in paywall["product_ids"] if pid in products],
        "remote_config": config,
    }
