"""HTTP routes of the Export Analytics API: what every operation shares (the per-key rate limit,
the ``Adapty-Tz`` header, answers as JSON or CSV) and the operations themselves."""

from collections.abc import Callable
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import Body, Request
from starlette.responses import Response

from subledger.client_api import service
from subledger.client_api.schemas import (
    AnalyticsIn,
    CohortIn,
    ConversionIn,
    Format,
    FunnelIn,
    LtvIn,
    MetricsRequest,
    PlacementInfoIn,
    RetentionIn,
)
from subledger.client_api.service import Table
from subledger.core.errors import bad_request
from subledger.core.http import JSONResponse, api_router, csv_response, runtime_of
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


def _answer(body: Any, table: Table, format: Format, request: Request) -> Response:
    """The answer as JSON, or its table as CSV when the body's ``format`` or the Accept header asks."""
    if format == "csv" or request.headers.get("accept", "").startswith("text/csv"):
        return csv_response(*table)
    return JSONResponse(body)


async def _computed(request: Request, operation: Callable[..., tuple[Any, Table]], body: MetricsRequest) -> Response:
    await _admitted(request)
    zone = time_zone(request)
    runtime = runtime_of(request)
    answer, table = await runtime.long_read(operation, runtime, request.state.app_id, body, zone)
    return _answer(answer, table, body.format, request)


@router.post("/metrics/analytics/", summary="Retrieve analytics data")
async def analytics(request: Request, body: Annotated[AnalyticsIn, Body()]) -> Response:
    return await _computed(request, service.analytics, body)


@router.post("/metrics/cohort/", summary="Retrieve cohort data")
async def cohort(request: Request, body: Annotated[CohortIn, Body()]) -> Response:
    return await _computed(request, service.cohort, body)


@router.post("/metrics/conversion/", summary="Retrieve conversion data")
async def conversion(request: Request, body: Annotated[ConversionIn, Body()]) -> Response:
    return await _computed(request, service.conversion, body)


@router.post("/metrics/funnel/", summary="Retrieve funnel data")
async def funnel(request: Request, body: Annotated[FunnelIn, Body()]) -> Response:
    return await _computed(request, service.funnel, body)


@router.post("/metrics/ltv/", summary="Retrieve Lifetime Value (LTV) data")
async def ltv(request: Request, body: Annotated[LtvIn, Body()]) -> Response:
    return await _computed(request, service.ltv, body)


@router.post("/metrics/retention/", summary="Retrieve retention data")
async def retention(request: Request, body: Annotated[RetentionIn, Body()]) -> Response:
    return await _computed(request, service.retention, body)


@router.post("/exports/placements/", summary="Retrieve placement info")
async def placements(request: Request, body: Annotated[PlacementInfoIn, Body()]) -> Response:
    await _admitted(request)
    time_zone(request)  # checked as every operation checks it, though a placement has no dates
    runtime = runtime_of(request)
    kind = body.filters.placement_type
    # subledger has paywall placements only: an onboarding export is empty.
    rows = (
        await runtime.read(paywalls_service.placement_export, runtime, request.state.app_id)
        if kind == "paywall"
        else []
    )
    return _answer({"data": rows}, (rows, [*PLACEMENT_COLUMNS, f"{kind}_name"]), body.format, request)
