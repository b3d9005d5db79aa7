"""HTTP routes of the Web API, ``/api/v2/web-api/``, and of the origins allowed to call it (admin API).

``web_api.access`` has checked the public key, the calling page's origin and the rate limits."""

from typing import Annotated

from fastapi import Body, Request
from pydantic import Field
from starlette.responses import Response

from subledger.apps import service as apps_service
from subledger.core.addressing import CurrentApp
from subledger.core.errors import bad_request
from subledger.core.fields import Str255, Strict
from subledger.core.http import JSONResponse, api_router, runtime_of
from subledger.web_api import service
from subledger.web_api.schemas import AttributionRequest, PaywallRequest, VisitRequest

router = api_router("/api/v2/web-api", "web api")
admin = api_router("/api/admin/v1", "admin: web api")

PUBLIC_KEY = {
    "parameters": [
        {
            "name": "authorization",
            "in": "header",
            "required": True,
            "schema": {"type": "string"},
            "description": "`Api-Key <public key>`",
        }
    ]
}


@router.post("/paywall/", summary="The paywall a profile sees at a placement", openapi_extra=PUBLIC_KEY)
async def paywall(request: Request, body: Annotated[PaywallRequest, Body()]) -> Response:
    runtime = runtime_of(request)
    return JSONResponse(await runtime.read(service.paywall, runtime, request.state.app_id, body))


@router.post("/paywall/visit/", status_code=201, summary="Record a paywall view", openapi_extra=PUBLIC_KEY)
async def visit(request: Request, body: Annotated[VisitRequest, Body()]) -> Response:
    runtime = runtime_of(request)
    await runtime.write(service.visit, runtime, request.state.app_id, body)
    return JSONResponse({}, status_code=201)


@router.post("/attribution/", status_code=201, summary="Add a profile's attribution", openapi_extra=PUBLIC_KEY)
async def attribution(request: Request, body: Annotated[AttributionRequest, Body()]) -> Response:
    runtime = runtime_of(request)
    await runtime.write(service.attribution, runtime, request.state.app_id, body)
    return JSONResponse({}, status_code=201)


class OriginsIn(Strict):
    origins: Annotated[list[Str255], Field(max_length=100)]


@admin.get("/web-api/origins/", summary="The origins whose pages may call the app's Web API")
async def get_origins(request: Request, app_id: CurrentApp) -> Response:
    runtime = runtime_of(request)
    return JSONResponse({"data": {"origins": await runtime.read(apps_service.web_origins, runtime.db, app_id)}})


@admin.put("/web-api/origins/", summary="Replace the origins whose pages may call the app's Web API")
async def set_origins(request: Request, app_id: CurrentApp, body: Annotated[OriginsIn, Body()]) -> Response:
    runtime = runtime_of(request)
    try:
        origins = await runtime.write(apps_service.set_web_origins, runtime.db, app_id, body.origins)
    except ValueError as refused:
        raise bad_request("base_error", "origins", str(refused)) from None
    return JSONResponse({"data": {"origins": origins}})
