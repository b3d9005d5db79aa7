"""Admin API for store notifications: ``/api/admin/v1/store-notifications/`` and the audit log of refused ones
(the newest of each app's, with counts of all)."""

from typing import Annotated, Literal
from uuid import UUID

from fastapi import Depends, Query, Request
from starlette.responses import Response

from subledger.core.addressing import current_app
from subledger.core.http import JSONResponse, api_router
from subledger.stores import service

admin = api_router("/api/admin/v1", "admin: store notifications")

App = Annotated[UUID, Depends(current_app)]
Store = Literal["app_store", "play_store", "stripe", "paddle"]
Status = Literal["applied", "pending", "stale", "ignored"]


@admin.get("/store-notifications/", summary="Notifications the stores sent, newest first")
async def list_notifications(
    request: Request,
    app_id: App,
    store: Annotated[Store | None, Query()] = None,
    status: Annotated[Status | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    runtime = request.app.state.runtime
    rows = await runtime.read(service.list_notifications, runtime, app_id, store, status, limit)
    return JSONResponse({"data": [service.notification_out(row) for row in rows]})


@admin.get("/store-notifications/refused/", summary="The audit log of store requests that failed verification")
async def list_refused(request: Request, app_id: App, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> Response:
    runtime = request.app.state.runtime
    rows = await runtime.read(service.list_refused, runtime, app_id, limit)
    # The log keeps the newest of each app's: the counts are of every one refused.
    counts = await runtime.read(service.refused_totals, runtime, app_id)
    return JSONResponse({"data": [service.refused_out(row) for row in rows], "counts": counts})
