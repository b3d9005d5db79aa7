"""HTTP routes of the profile API: ``/api/v2/server-side-api/profile/``.

Headers are read from the request directly (see ``core.addressing.profile_ref``);
``openapi_extra`` documents them.
"""

from typing import Annotated

from fastapi import Body, Request
from starlette.responses import Response

from subledger.core.addressing import PLATFORM, PROFILE_HEADERS, profile_ref, text_header
from subledger.core.http import JSONResponse, api_router, runtime_of
from subledger.profiles import service
from subledger.profiles.schemas import IntegrationIdsIn, ProfileEnvelope, ProfileFields

router = api_router("/api/v2/server-side-api", "profile")

Fields = Annotated[ProfileFields | None, Body()]
WITH_PLATFORM = {"parameters": [*PROFILE_HEADERS["parameters"], PLATFORM]}


def _platform(request: Request) -> str | None:
    """The ``adapty-platform`` header, kept with the installation as its body's fields are."""
    return text_header(request.headers.get("adapty-platform"), "adapty-platform")


@router.post("/profile/", response_model=ProfileEnvelope, summary="Create a profile", openapi_extra=WITH_PLATFORM)
async def create_profile(request: Request, body: Fields = None) -> Response:
    runtime = runtime_of(request)
    result = await runtime.write(
        service.create_profile,
        runtime,
        request.state.app_id,
        profile_ref(request),
        body or ProfileFields(),
        _platform(request),
    )
    return JSONResponse(result)


@router.get("/profile/", response_model=ProfileEnvelope, summary="Get a profile", openapi_extra=PROFILE_HEADERS)
async def get_profile(request: Request) -> Response:
    runtime = runtime_of(request)
    result = await service.get_profile_on_loop(runtime, request.state.app_id, profile_ref(request))
    return JSONResponse(result)


@router.patch("/profile/", response_model=ProfileEnvelope, summary="Update a profile", openapi_extra=WITH_PLATFORM)
async def update_profile(request: Request, body: Fields = None) -> Response:
    runtime = runtime_of(request)
    ref = profile_ref(request)
    fields = body or ProfileFields()
    result = await runtime.write(service.update_profile, runtime, request.state.app_id, ref, fields, _platform(request))
    return JSONResponse(result)


@router.delete(
    "/profile/",
    status_code=204,
    response_class=Response,
    summary="Delete a profile and all its data",
    openapi_extra=PROFILE_HEADERS,
)
async def delete_profile(request: Request) -> Response:
    runtime = runtime_of(request)
    await runtime.write(service.delete_profile, runtime, request.state.app_id, profile_ref(request))
    return Response(status_code=204)


INTEGRATION_IDS_PATH = "/integration/profile/set/integration-identifiers/"


@router.get(INTEGRATION_IDS_PATH, summary="Get a profile's integration identifiers", openapi_extra=PROFILE_HEADERS)
async def get_integration_ids(request: Request) -> Response:
    runtime = runtime_of(request)
    return JSONResponse(
        await runtime.read(service.integration_ids, runtime, request.state.app_id, profile_ref(request))
    )


@router.post(
    INTEGRATION_IDS_PATH,
    response_class=Response,
    summary="Set a profile's integration identifiers (the response body is blank)",
    openapi_extra=PROFILE_HEADERS,
)
async def set_integration_ids(request: Request, body: Annotated[IntegrationIdsIn, Body()]) -> Response:
    runtime = runtime_of(request)
    await runtime.write(service.set_integration_ids, runtime, request.state.app_id, profile_ref(request), body)
    return Response(status_code=200)
