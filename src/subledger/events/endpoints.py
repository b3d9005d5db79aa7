"""Admin API for events and webhooks: ``/api/admin/v1/events/``, ``/webhooks/``, ``/deliveries/``."""

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from fastapi import Body, Query, Request
from starlette.responses import Response

from subledger.core.addressing import CurrentApp
from subledger.core.dates import parse_datetime
from subledger.core.errors import bad_request
from subledger.core.fields import whole_number
from subledger.core.http import JSONResponse, api_router, runtime_of
from subledger.events import rules, service
from subledger.events.schemas import EndpointChange, EndpointIn, ReplayIn, TestEventIn

router = api_router("/api/admin/v1", "admin: events and webhooks")


def _when(name: str, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_datetime(value)
    except ValueError:
        raise bad_request("validation_error", name, "Use an ISO 8601 date-time with an offset.") from None


def _cursor(value: str | None) -> int | None:
    if not value:
        return None
    cursor = whole_number(value, 0, rules.MAX_CURSOR)
    if cursor is None:
        raise bad_request("validation_error", "cursor", "Not a cursor this feed issued.")
    return cursor


def _uuid(name: str, value: str | None) -> UUID | None:
    return None if value is None else _path_uuid(name, value)


def _path_uuid(name: str, value: str) -> UUID:
    try:
        return UUID(value)
    except ValueError:
        raise bad_request("validation_error", name, "Must be a valid UUID.") from None


@router.get("/events/", summary="The app's event feed, oldest first, paginated by cursor")
async def list_events(
    request: Request,
    app_id: CurrentApp,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    profile_id: str | None = None,
    event_type: Annotated[list[str] | None, Query()] = None,
    since: str | None = None,
    until: str | None = None,
) -> Response:
    result = await runtime_of(request).read(
        service.feed,
        runtime_of(request),
        app_id,
        _cursor(cursor),
        limit,
        _uuid("profile_id", profile_id),
        event_type,
        _when("since", since),
        _when("until", until),
    )
    return JSONResponse(result)


@router.get("/webhooks/", summary="List webhook endpoints")
async def list_webhooks(request: Request, app_id: CurrentApp) -> Response:
    runtime = runtime_of(request)
    return JSONResponse({"data": await runtime.read(service.list_endpoints, runtime, app_id)})


@router.post("/webhooks/", status_code=201, summary="Register a webhook endpoint (each URL verified with a POST {})")
async def create_webhook(request: Request, app_id: CurrentApp, body: Annotated[EndpointIn, Body()]) -> Response:
    created = await service.register_endpoint(runtime_of(request), app_id, body)
    return JSONResponse({"data": created}, status_code=201)


@router.get("/webhooks/{endpoint_id}/", summary="One webhook endpoint")
async def get_webhook(request: Request, app_id: CurrentApp, endpoint_id: str) -> Response:
    runtime = runtime_of(request)
    found = await runtime.read(service.find_endpoint, runtime, app_id, _path_uuid("endpoint_id", endpoint_id))
    return JSONResponse({"data": service.endpoint_out(found)})


@router.patch("/webhooks/{endpoint_id}/", summary="Change an endpoint (a changed URL is verified again)")
async def change_webhook(
    request: Request, app_id: CurrentApp, endpoint_id: str, body: Annotated[EndpointChange, Body()]
) -> Response:
    parsed = _path_uuid("endpoint_id", endpoint_id)
    return JSONResponse({"data": await service.update_endpoint(runtime_of(request), app_id, parsed, body)})


@router.post("/webhooks/{endpoint_id}/test/", summary="Send a sample event to one of the endpoint's URLs now")
async def test_webhook(
    request: Request, app_id: CurrentApp, endpoint_id: str, body: Annotated[TestEventIn | None, Body()] = None
) -> Response:
    parsed = _path_uuid("endpoint_id", endpoint_id)
    sent = await service.send_test_event(runtime_of(request), app_id, parsed, body or TestEventIn())
    return JSONResponse({"data": sent})


@router.delete("/webhooks/{endpoint_id}/", status_code=204, response_class=Response, summary="Remove an endpoint")
async def delete_webhook(request: Request, app_id: CurrentApp, endpoint_id: str) -> Response:
    runtime = runtime_of(request)
    await runtime.write(service.delete_endpoint, runtime, app_id, _path_uuid("endpoint_id", endpoint_id))
    return Response(status_code=204)


@router.get("/deliveries/", summary="Webhook deliveries with their attempts, newest first")
async def list_deliveries(
    request: Request,
    app_id: CurrentApp,
    status: Literal["pending", "delivered", "refused", "dead"] | None = None,
    endpoint_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    rows = await runtime_of(request).read(
        service.list_deliveries, runtime_of(request), app_id, status, _uuid("endpoint_id", endpoint_id), limit
    )
    return JSONResponse({"data": rows})


@router.post("/deliveries/replay/", summary="Queue dead-lettered and refused deliveries again")
async def replay(request: Request, app_id: CurrentApp, body: Annotated[ReplayIn | None, Body()] = None) -> Response:
    ids = body.delivery_ids if body else None
    runtime = runtime_of(request)
    count = await runtime.write(service.replay, runtime, app_id, ids)
    return JSONResponse({"data": {"replayed": count}})
