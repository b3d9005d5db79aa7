"""HTTP routes of the profile API: ``/api/v2/server-side-api/profile/``."""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Body, Depends, Header, Request
from starlette.responses import Response

from subledger.core.addressing import ProfileRef, current_app, customer_user_id_header, profile_ref
from subledger.core.errors import NON_FIELD, bad_request
from subledger.core.http import ERROR_RESPONSES, JSONResponse, header_text
from subledger.profiles import service
from subledger.profiles.schemas import ProfileEnvelope, ProfileFields

router = APIRouter(prefix="/api/v2/server-side-api", tags=["profile"], responses=ERROR_RESPONSES)

App = Annotated[UUID, Depends(current_app)]
Ref = Annotated[ProfileRef, Depends(profile_ref)]
Platform = Annotated[str | None, Header(alias="adapty-platform")]
Fields = Annotated[ProfileFields | None, Body()]


@router.post("/profile/", response_model=ProfileEnvelope, summary="Create a profile")
async def create_profile(
    request: Request,
    app_id: App,
    body: Fields = None,
    customer_user_id: Annotated[str | None, Header(alias="adapty-customer-user-id")] = None,
    platform: Platform = None,
) -> Response:
    cuid = customer_user_id_header(customer_user_id)
    if cuid is None:
        raise bad_request(
            "base_error", NON_FIELD, "The adapty-customer-user-id header is required to create a profile."
        )
    fields = body or ProfileFields()
    runtime = request.app.state.runtime
    result = await runtime.write(service.create_profile, runtime, app_id, cuid, fields, header_text(platform))
    return JSONResponse(result)


@router.get("/profile/", response_model=ProfileEnvelope, summary="Get a profile")
async def get_profile(request: Request, app_id: App, ref: Ref) -> Response:
    result = await request.app.state.runtime.read(service.get_profile, request.app.state.runtime, app_id, ref)
    return JSONResponse(result)


@router.patch("/profile/", response_model=ProfileEnvelope, summary="Update a profile")
async def update_profile(
    request: Request, app_id: App, ref: Ref, body: Fields = None, platform: Platform = None
) -> Response:
    fields = body or ProfileFields()
    runtime = request.app.state.runtime
    result = await runtime.write(service.update_profile, runtime, app_id, ref, fields, header_text(platform))
    return JSONResponse(result)


@router.delete("/profile/", status_code=204, response_class=Response, summary="Delete a profile and all its data")
async def delete_profile(request: Request, app_id: App, ref: Ref) -> Response:
    await request.app.state.runtime.write(service.delete_profile, request.app.state.runtime, app_id, ref)
    return Response(status_code=204)
