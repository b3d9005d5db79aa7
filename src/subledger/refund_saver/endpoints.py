"""HTTP routes of the Refund Saver: a profile's settings (the contract's, with the profile in the
headers) and the app's, with the log of consumption requests (admin API)."""

from typing import Annotated

from fastapi import Body, Request
from starlette.responses import Response

from subledger.core.addressing import PROFILE_HEADERS, CurrentApp, profile_ref
from subledger.core.http import JSONResponse, api_router, runtime_of
from subledger.refund_saver import service
from subledger.refund_saver.schemas import AppSettingsIn, ProfileSettingsIn

router = api_router("/api/v2/server-side-api", "refund saver")
admin = api_router("/api/admin/v1", "admin: refund saver")

SETTINGS_PATH = "/purchase/profile/refund-saver/settings/"


@router.get(SETTINGS_PATH, summary="A profile's Refund Saver settings", openapi_extra=PROFILE_HEADERS)
async def get_settings(request: Request) -> Response:
    runtime = runtime_of(request)
    return JSONResponse(
        await runtime.read(service.profile_settings, runtime, request.state.app_id, profile_ref(request))
    )


@router.post(SETTINGS_PATH, summary="Set a profile's Refund Saver settings", openapi_extra=PROFILE_HEADERS)
async def set_settings(request: Request, body: Annotated[ProfileSettingsIn, Body()]) -> Response:
    runtime = runtime_of(request)
    ref = profile_ref(request)
    return JSONResponse(await runtime.write(service.set_profile_settings, runtime, request.state.app_id, ref, body))


@admin.get("/refund-saver/", summary="The app's Refund Saver settings")
async def get_app_settings(request: Request, app_id: CurrentApp) -> Response:
    runtime = runtime_of(request)
    return JSONResponse({"data": await runtime.read(service.app_settings, runtime, app_id)})


@admin.patch("/refund-saver/", summary="Turn the Refund Saver on or off, and set the app's defaults")
async def set_app_settings(request: Request, app_id: CurrentApp, body: Annotated[AppSettingsIn, Body()]) -> Response:
    runtime = runtime_of(request)
    return JSONResponse({"data": await runtime.write(service.configure, runtime, app_id, body)})


@admin.get("/refund-saver/requests/", summary="The latest consumption requests and what was answered")
async def list_requests(request: Request, app_id: CurrentApp) -> Response:
    runtime = runtime_of(request)
    return JSONResponse({"data": await runtime.read(service.requests, runtime, app_id)})
