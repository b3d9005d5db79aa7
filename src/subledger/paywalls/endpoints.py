"""HTTP routes: the contract's ``paywalls/`` endpoints, a profile's paywall at a
placement, views, and the admin API for paywalls, audiences, A/B tests and placements."""

from typing import Annotated
from uuid import UUID

from fastapi import Body, Path, Request
from starlette.responses import Response

from subledger.core.addressing import PROFILE_HEADERS, CurrentApp, profile_ref
from subledger.core.errors import bad_request
from subledger.core.fields import whole_number
from subledger.core.http import JSONResponse, api_router, runtime_of
from subledger.paywalls import service
from subledger.paywalls.schemas import (
    AbTestIn,
    AudienceIn,
    PaywallIn,
    PaywallPatch,
    PlacementIn,
    RemoteConfigPut,
    ViewIn,
)

router = api_router("/api/v2/server-side-api", "paywalls")
admin = api_router("/api/admin/v1", "admin: paywalls")

PlacementId = Annotated[str, Path(max_length=255)]  # no longer than a placement's own id may be


# The contract's page size limits; a page number past the last page is an empty page.
MAX_PAGE_SIZE = 100
MAX_PAGE = 10**12  # no app has more paywalls than this many pages hold


def _page_parameter(request: Request, name: str, source: str, default: int, high: int, message: str) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    number = whole_number(raw, 1, high)
    if number is None:
        raise bad_request("validation_error", source, message)
    return number


@router.get("/paywalls/", summary="List paywalls")
async def list_paywalls(request: Request, app_id: CurrentApp) -> Response:
    page = _page_parameter(
        request,
        "page[number]",
        "page_number",
        1,
        MAX_PAGE,
        "Invalid page_number parameter. Must be a positive integer.",
    )
    page_size = _page_parameter(
        request,
        "page[size]",
        "page_size",
        20,
        MAX_PAGE_SIZE,
        f"Invalid page_size parameter. Must be between 1 and {MAX_PAGE_SIZE}.",
    )
    runtime = runtime_of(request)
    count, items = await runtime.read(service.list_paywalls, runtime, app_id, page, page_size)
    pagination = {"count": count, "page": page, "pages": max(1, -(-count // page_size))}
    return JSONResponse({"data": items, "meta": {"pagination": pagination}})


@router.get("/paywalls/{paywall_id}/", summary="Get a paywall")
async def get_paywall(request: Request, app_id: CurrentApp, paywall_id: str) -> Response:
    runtime = runtime_of(request)
    return JSONResponse(await runtime.read(service.get_paywall, runtime, app_id, paywall_id))


@router.put("/paywalls/{paywall_id}/", summary="Replace a paywall's remote configs, every locale's")
async def put_paywall(
    request: Request, app_id: CurrentApp, paywall_id: str, body: Annotated[RemoteConfigPut, Body()]
) -> Response:
    runtime = runtime_of(request)
    return JSONResponse(await runtime.write(service.replace_remote_configs, runtime, app_id, paywall_id, body))


# The Web API's paywall and paywall visit for the app's server, with the secret key and the
# profile in the headers: the same use cases, answered the same way.


@router.get(
    "/placements/{placement_id}/paywall/",
    summary="The paywall a profile sees at a placement (the Web API's, with the secret key)",
    openapi_extra=PROFILE_HEADERS,
)
async def placement_paywall(
    request: Request, app_id: CurrentApp, placement_id: PlacementId, locale: str | None = None, store: str | None = None
) -> Response:
    runtime = runtime_of(request)
    ref = profile_ref(request)
    shown = await runtime.read(service.paywall_for_placement, runtime, app_id, ref, placement_id, locale, store)
    return JSONResponse(shown)


@router.post(
    "/placements/{placement_id}/views/",
    status_code=204,
    response_class=Response,
    summary="Record that a profile saw a paywall (the Web API's visit, with the secret key)",
    openapi_extra=PROFILE_HEADERS,
)
async def record_view(
    request: Request, app_id: CurrentApp, placement_id: PlacementId, body: Annotated[ViewIn, Body()]
) -> Response:
    runtime = runtime_of(request)
    ref = profile_ref(request)
    await runtime.write(
        service.record_view, runtime, app_id, ref, body.variation_id, None, None, placement_id, body.paywall_id
    )
    return Response(status_code=204)


@admin.get("/paywalls/", summary="List paywalls with their configuration")
async def admin_list(request: Request, app_id: CurrentApp) -> Response:
    runtime = runtime_of(request)
    return JSONResponse({"data": await runtime.read(service.list_paywalls_admin, runtime, app_id)})


@admin.post("/paywalls/", status_code=201, summary="Create a paywall")
async def admin_create(request: Request, app_id: CurrentApp, body: Annotated[PaywallIn, Body()]) -> Response:
    runtime = runtime_of(request)
    return JSONResponse({"data": await runtime.write(service.create_paywall, runtime, app_id, body)}, status_code=201)


@admin.patch("/paywalls/{paywall_id}/", summary="Edit a paywall, or set its state")
async def admin_update(
    request: Request, app_id: CurrentApp, paywall_id: UUID, body: Annotated[PaywallPatch, Body()]
) -> Response:
    runtime = runtime_of(request)
    return JSONResponse({"data": await runtime.write(service.update_paywall, runtime, app_id, paywall_id, body)})


@admin.get("/paywalls/metrics/", summary="Views, purchases, conversion and revenue per paywall and variation")
async def admin_metrics(request: Request, app_id: CurrentApp) -> Response:
    runtime = runtime_of(request)
    return JSONResponse({"data": await runtime.read(service.paywall_metrics, runtime, app_id)})


@admin.get("/audiences/", summary="List audiences")
async def admin_audiences(request: Request, app_id: CurrentApp) -> Response:
    runtime = runtime_of(request)
    return JSONResponse({"data": await runtime.read(service.list_audiences, runtime, app_id)})


@admin.post("/audiences/", status_code=201, summary="Create an audience")
async def admin_create_audience(request: Request, app_id: CurrentApp, body: Annotated[AudienceIn, Body()]) -> Response:
    runtime = runtime_of(request)
    return JSONResponse({"data": await runtime.write(service.create_audience, runtime, app_id, body)}, status_code=201)


@admin.delete("/audiences/{audience_id}/", status_code=204, response_class=Response, summary="Delete an audience")
async def admin_delete_audience(request: Request, app_id: CurrentApp, audience_id: str) -> Response:
    runtime = runtime_of(request)
    await runtime.write(service.delete_audience, runtime, app_id, audience_id)
    return Response(status_code=204)


@admin.get("/ab-tests/", summary="List A/B tests")
async def admin_ab_tests(request: Request, app_id: CurrentApp) -> Response:
    runtime = runtime_of(request)
    return JSONResponse({"data": await runtime.read(service.list_ab_tests, runtime, app_id)})


@admin.post("/ab-tests/", status_code=201, summary="Create an A/B test of paywalls with weights")
async def admin_create_ab_test(request: Request, app_id: CurrentApp, body: Annotated[AbTestIn, Body()]) -> Response:
    runtime = runtime_of(request)
    return JSONResponse({"data": await runtime.write(service.create_ab_test, runtime, app_id, body)}, status_code=201)


@admin.get("/ab-tests/{ab_test_id}/metrics/", summary="An A/B test's figures and significance")
async def admin_ab_test_metrics(request: Request, app_id: CurrentApp, ab_test_id: UUID) -> Response:
    runtime = runtime_of(request)
    return JSONResponse({"data": await runtime.read(service.ab_test_metrics, runtime, app_id, ab_test_id)})


@admin.get("/placements/", summary="List placements")
async def admin_placements(request: Request, app_id: CurrentApp) -> Response:
    runtime = runtime_of(request)
    return JSONResponse({"data": await runtime.read(service.list_placements, runtime, app_id)})


@admin.put("/placements/", summary="Create or replace a placement's targets")
async def admin_set_placement(request: Request, app_id: CurrentApp, body: Annotated[PlacementIn, Body()]) -> Response:
    runtime = runtime_of(request)
    return JSONResponse({"data": await runtime.write(service.set_placement, runtime, app_id, body)})
