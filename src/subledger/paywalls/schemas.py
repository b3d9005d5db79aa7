"""Paywall shapes: admin bodies, the contract's Paywall object, remote configs and list query."""

import json
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from uuid import UUID

import orjson
from pydantic import AfterValidator, Field, PlainValidator, StringConstraints, WithJsonSchema, model_validator
from pydantic_core import PydanticCustomError

from subledger.core import strict_json
from subledger.core.dates import format_datetime, rfc3339
from subledger.core.fields import FreeJson, NonEmpty255, Strict, storable, text
from subledger.paywalls.rules import ATTRIBUTION_FIELDS, OPERATORS, PROFILE_FIELDS, product_set

Name = Annotated[str, Field(strict=True, min_length=1, max_length=255, pattern=r"^[A-Za-z0-9._:-]+$")]
Locale = Annotated[str, Field(strict=True, min_length=2, max_length=16, pattern=r"^[A-Za-z]{2,3}([_-][A-Za-z0-9]+)*$")]


def _config_data(value: Any) -> dict[str, Any]:
    """A remote config's ``data``: a JSON string holding an object, which is what is kept."""
    if not isinstance(value, str):
        raise PydanticCustomError("validation_error", "Must be a JSON object written as a string.")
    try:
        data = strict_json.loads(value)
    except json.JSONDecodeError:
        raise PydanticCustomError("validation_error", "Must be a JSON object written as a string.") from None
    if not isinstance(data, dict):
        raise PydanticCustomError("validation_error", "Must be a JSON object written as a string.")
    for value in data.values():
        storable(value)
    return data


class RemoteConfigIn(Strict):
    locale: Locale
    data: Annotated[
        dict[str, Any],
        PlainValidator(_config_data),
        WithJsonSchema({"type": "string", "description": "A JSON object, as a string"}),
    ]


def _one_per_locale(configs: list[RemoteConfigIn]) -> list[RemoteConfigIn]:
    if len({config.locale for config in configs}) < len(configs):
        raise PydanticCustomError("validation_error", "A locale may have one remote config.")
    return configs


def by_locale(configs: list[RemoteConfigIn]) -> dict[str, dict[str, Any]]:
    """Remote configs as a paywall keeps them: {locale: data}, in the order sent."""
    return {config.locale: config.data for config in configs}


RemoteConfigs = Annotated[list[RemoteConfigIn], Field(max_length=200), AfterValidator(_one_per_locale)]


def _web_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PydanticCustomError("base_error", "Enter a valid http or https URL.")
    return value


WebPurchaseUrl = Annotated[
    str,
    StringConstraints(strict=True, max_length=2048),
    AfterValidator(text),
    AfterValidator(_web_url),
    WithJsonSchema({"type": "string", "format": "uri"}),
]
# A paywall is live while a placement shows it; the others an operator sets.
SettableState = Literal["draft", "inactive", "archived"]


class PaywallIn(Strict):
    title: NonEmpty255
    product_ids: Annotated[list[UUID], Field(max_length=50)] = []
    remote_configs: RemoteConfigs = []
    web_purchase_url: WebPurchaseUrl | None = None


class PaywallPatch(Strict):
    # None: not sent, so left as it is; a null sent is refused, as the types say (pydantic does not
    # check defaults, which mypy cannot tell).
    title: NonEmpty255 = None  # type: ignore[assignment]
    product_ids: Annotated[list[UUID], Field(max_length=50)] = None  # type: ignore[assignment]
    remote_configs: RemoteConfigs = None  # type: ignore[assignment]
    web_purchase_url: WebPurchaseUrl | None = None
    state: SettableState = None  # type: ignore[assignment]


class RemoteConfigPut(Strict):
    """The contract's PUT body: every locale's remote config, replacing all there were."""

    # None: not sent, which the service refuses with the contract's error (a null sent is refused here).
    remote_configs: RemoteConfigs = None  # type: ignore[assignment]


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
        elif (
            self.field not in PROFILE_FIELDS
            and not self.field.startswith("custom_attribute.")
            and self.field not in {f"attribution.{name}" for name in ATTRIBUTION_FIELDS}
        ):
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


def product_object(product: dict[str, Any], bought: set[tuple[str, str]]) -> dict[str, Any]:
    """A paywall's product as a profile sees it: an introductory offer is for a profile that never
    bought the product, a promotional one for a profile that did."""
    before = (product["store"], product["store_product_id"]) in bought
    return {
        "title": product["title"] or product["store_product_id"],
        "is_consumable": product["is_consumable"],
        "adapty_product_id": str(product["id"]),
        "vendor_product_id": product["store_product_id"],
        "introductory_offer_eligibility": not product["is_consumable"] and not before,
        "promotional_offer_eligibility": not product["is_consumable"] and before,
        "base_plan_id": product["store_base_plan_id"] or None,
        "offer": None,
    }


def placement_paywall_object(
    paywall: dict[str, Any],
    products: dict[str, dict[str, Any]],
    bought: set[tuple[str, str]],
    placement_id: str,
    variation_id: str,
    ab_test_name: str | None,
    config: dict[str, Any] | None,
) -> dict[str, Any]:
    """The Web API's Paywall object: the paywall a profile sees at a placement. ``ab_test_name``
    and ``remote_config`` are left out when there is none, as the contract has them optional."""
    shown = {
        "placement_id": placement_id,
        "variation_id": variation_id,
        "paywall_id": str(paywall["id"]),
        "ab_test_name": ab_test_name,
        "paywall_name": paywall["title"],
        "products": [product_object(products[pid], bought) for pid in paywall["product_ids"] if pid in products],
        "remote_config": config and {"lang": config["lang"], "data": orjson.dumps(config["data"]).decode()},
    }
    return {name: value for name, value in shown.items() if value is not None}


def _paywall_product(product: dict[str, Any]) -> dict[str, Any]:
    return {
        "product_id": str(product["id"]),
        "title": product["title"] or product["store_product_id"],
        "product_set": product_set(product["period"], product["is_consumable"]),
        "offer": None,
    }


def paywall_list_item(paywall: dict[str, Any], products: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The contract's PaywallListItem."""
    return {
        "title": paywall["title"],
        "paywall_id": str(paywall["id"]),
        "use_paywall_builder": False,
        "use_paywall_builder_legacy": False,
        "updated_at": rfc3339(format_datetime(paywall["updated_at"])),
        "created_at": rfc3339(format_datetime(paywall["created_at"])),
        "state": paywall["state"],
        "is_deleted": False,
        "web_purchase_url": paywall["web_purchase_url"],
        "products": [_paywall_product(products[pid]) for pid in paywall["product_ids"] if pid in products],
    }


def paywall_object(paywall: dict[str, Any], products: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The contract's Paywall object: the list item with every locale's remote config."""
    return {
        **paywall_list_item(paywall, products),
        "remote_configs": [
            {"locale": locale, "data": orjson.dumps(data).decode()}
            for locale, data in paywall["remote_configs"].items()
        ],
        "main_screenshot": None,
    }
