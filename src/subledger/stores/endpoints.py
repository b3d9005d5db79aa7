"""Admin API for stores: the app's connections (``/api/admin/v1/stores/``, each store's set
here), the notifications received (``store-notifications/``) and the audit log of refused ones
(the newest of each app's, with counts of all)."""

from typing import Annotated, Literal
from uuid import UUID

from fastapi import Body, Query, Request
from starlette.responses import Response

from subledger.core.addressing import CurrentApp
from subledger.core.http import JSONResponse, api_router, runtime_of
from subledger.stores import connections, service
from subledger.stores.rules import ConnectedStore
from subledger.stores.schemas import (
    AppStoreConnectionIn,
    PaddleConnectionIn,
    PlayStoreConnectionIn,
    StripeConnectionIn,
)

admin = api_router("/api/admin/v1", "admin: store notifications")

Status = Literal["applied", "pending", "stale", "ignored"]


@admin.get("/store-notifications/", summary="Notifications the stores sent, newest first")
async def list_notifications(
    request: Request,
    app_id: CurrentApp,
    store: Annotated[ConnectedStore | None, Query()] = None,
    status: Annotated[Status | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    runtime = runtime_of(request)
    rows = await runtime.read(service.list_notifications, runtime, app_id, store, status, limit)
    return JSONResponse({"data": [service.notification_out(row) for row in rows]})


@admin.get("/store-notifications/refused/", summary="The audit log of store requests that failed verification")
async def list_refused(
    request: Request, app_id: CurrentApp, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> Response:
    runtime = runtime_of(request)
    rows = await runtime.read(service.list_refused, runtime, app_id, limit)
    # The log keeps the newest of each app's: the counts are of every one refused.
    counts = await runtime.read(service.refused_totals, runtime, app_id)
    return JSONResponse({"data": [service.refused_out(row) for row in rows], "counts": counts})


@admin.get("/stores/", summary="The stores the app is connected to (names of secrets, never their values)")
async def list_connections(request: Request, app_id: CurrentApp) -> Response:
    runtime = runtime_of(request)
    return JSONResponse({"data": await runtime.read(service.connections, runtime, app_id)})


@admin.put("/stores/stripe/", summary="Connect Stripe, or change its keys and profile source")
async def connect_stripe(request: Request, app_id: CurrentApp, body: Annotated[StripeConnectionIn, Body()]) -> Response:
    return await _connect(request, app_id, body)


@admin.put("/stores/paddle/", summary="Connect Paddle, or change its key, secret and settings")
async def connect_paddle(request: Request, app_id: CurrentApp, body: Annotated[PaddleConnectionIn, Body()]) -> Response:
    return await _connect(request, app_id, body)


@admin.put("/stores/app-store/", summary="Connect the App Store, or change its settings and API key")
async def connect_app_store(
    request: Request, app_id: CurrentApp, body: Annotated[AppStoreConnectionIn, Body()]
) -> Response:
    return await _connect(request, app_id, body)


@admin.put("/stores/play-store/", summary="Connect Google Play, or change its settings and service account")
async def connect_play_store(
    request: Request, app_id: CurrentApp, body: Annotated[PlayStoreConnectionIn, Body()]
) -> Response:
    return await _connect(request, app_id, body)


async def _connect(request: Request, app_id: UUID, body: connections.ConnectionIn) -> Response:
    runtime = runtime_of(request)
    return JSONResponse({"data": await runtime.write(connections.connect(body), runtime, app_id)})
