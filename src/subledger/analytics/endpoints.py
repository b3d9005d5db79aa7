"""Admin API for analytics: ``/api/admin/v1/metrics/``."""

from datetime import date
from typing import Annotated, Literal

from fastapi import Query, Request
from starlette.responses import Response

from subledger.analytics import service
from subledger.core.addressing import CurrentApp
from subledger.core.http import JSONResponse, api_router, runtime_of

admin = api_router("/api/admin/v1", "admin: analytics")


@admin.get("/metrics/", summary="Revenue, MRR, subscriptions, trials, churn, refunds, ARPU and cohorts over time")
async def metrics(
    request: Request,
    app_id: CurrentApp,
    period: Annotated[Literal["day", "week", "month"], Query()] = "day",
    start: Annotated[date | None, Query(description="First day (default: 30 days, 12 weeks or 12 months back)")] = None,
    end: Annotated[date | None, Query(description="Last day (default: today)")] = None,
    environment: Annotated[Literal["Production", "Sandbox", "all"], Query()] = "Production",
    store: Annotated[str | None, Query(max_length=255)] = None,
    country: Annotated[str | None, Query(min_length=2, max_length=2)] = None,
    product: Annotated[str | None, Query(max_length=255, description="A store_product_id")] = None,
) -> Response:
    query = service.MetricsQuery(
        period=period,
        start=start,
        end=end,
        environment=None if environment == "all" else environment,
        store=store,
        country=country.upper() if country else None,
        product=product,
    )
    runtime = runtime_of(request)
    return JSONResponse(await runtime.long_read(service.metrics, runtime, app_id, query))
