"""Admin API shapes for access levels and products."""

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, StrictBool, StringConstraints
from pydantic_core import PydanticCustomError

from subledger.catalog.rules import is_period
from subledger.core.dates import format_datetime
from subledger.core.fields import NonEmpty255

Name = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=255, pattern=r"^[A-Za-z0-9._:-]+$")]
Text255 = NonEmpty255


def _period(value: str) -> str:
    if not is_period(value):
        raise PydanticCustomError(
            "base_error", "Period must be an ISO 8601 duration such as P1W, P1M, P3M, P1Y, or `lifetime`."
        )
    return value


class AccessLevelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    access_level_id: Name


class ProductIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    store: Text255
    store_product_id: Text255
    store_base_plan_id: Text255 | None = None
    access_level_id: Name | None = None
    period: Annotated[str, StringConstraints(strict=True), AfterValidator(_period)]
    is_consumable: StrictBool = False
    title: Text255 | None = None


def access_level_out(row: dict[str, Any]) -> dict[str, Any]:
    return {"access_level_id": row["id"], "created_at": format_datetime(row["created_at"])}


def product_out(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "product_id": str(row["id"]),
        "store": row["store"],
        "store_product_id": row["store_product_id"],
        "store_base_plan_id": row["store_base_plan_id"] or None,
        "access_level_id": row["access_level_id"],
        "period": row["period"],
        "is_consumable": row["is_consumable"],
        "title": row["title"],
        "created_at": format_datetime(row["created_at"]),
    }
