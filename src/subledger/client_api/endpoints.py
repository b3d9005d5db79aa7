"""HTTP routes of the Export Analytics API: what every operation shares (the per-key rate limit,
the ``Adapty-Tz`` header, answers as JSON or CSV) and the operations themselves."""

import csv
import io
from collections.abc import Sequence
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import Body, Request
from starlette.responses import Response

from subledger.client_api.schemas import Format, PlacementInfoIn
from subledger.core.errors import bad_request
from subledger.core.http import JSONResponse, api_router
from subledger.paywalls import service as paywalls_service

router = api_router("/api/v1/client-api", "export analytics")

PLACEMENT_COLUMNS = [
    "developer_id",
    "placement_name",
    "audience_name",
    "segment_name",
    "cross_placement_ab_test_name",
    "ab_test_name",
]


async def _admitted(request: Request) -> None:
    """The contract's limit: a few requests a second (429 with Retry-After past it)."""
    state = request.app.state
    rate = state.runtime.settings.client_api_rate_per_second
    await state.client_api_rate_limits.take(state.runtime, request.state.app_id, rate)


def time_zone(request: Request) -> ZoneInfo:
    """The ``Adapty-Tz`` header's IANA time zone (UTC without it); 400 for a name there is none of."""
    name = request.headers.get("adapty-tz")
    try:
        return ZoneInfo(name.strip() or "UTC") if name is not None else ZoneInfo("UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise bad_request("invalid_time_zone", "Adapty-Tz", f"{name!r} is not an IANA time zone name.") from None


def _answer(rows: list[dict[str, Any]], columns: Sequence[str], format: Format, request: Request) -> Response:
    """``{"data": rows}``, or the rows as CSV when the body's ``format`` or the Accept header asks."""
    if format == "csv" or request.headers.get("accept", "").startswith("text/csv"):
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows({name: "" if row.get(name) is None else row[name] for name in columns} for row in rows)
        return Response(text.getvalue(), media_type="text/csv")
    return JSONResponse({"data": rows})


@router.post("/exports/placements/", summary="Retrieve placement info")
async def placements(request: Request, body: Annotated[PlacementInfoIn, Body()]) -> Response:
    await _admitted(request)
    time_zone(request)  # checked as every operation checks it, though a placement has no dates
    runtime = request.app.state.runtime
    kind = body.filters.placement_type
    # subledger has paywall placements only: an onboarding export is empty.
    rows = (
        await runtime.read(paywalls_service.placement_export, runtime, request.state.app_id)
        if kind == "paywall"
        else []
    )
    return _answer(rows, [*PLACEMENT_COLUMNS, f"{kind}_name"], body.format, request)
