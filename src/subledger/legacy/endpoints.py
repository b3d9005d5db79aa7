"""HTTP routes of the legacy API v1: ``/api/v1/sdk/profiles/...``.

The profile is named in the path; it is read from the raw path so that
percent-encoded ``/`` and ``?`` stay part of a customer_user_id (the routes
take ``{id:path}`` so such ids still reach them).
"""

import json
from typing import Annotated
from uuid import UUID

from fastapi import Body, Request
from pydantic import ValidationError
from starlette.responses import Response

from subledger.core import strict_json
from subledger.core.addressing import CurrentApp
from subledger.core.errors import NON_FIELD, ApiError, from_validation_errors
from subledger.core.http import JSONResponse, api_router, runtime_of
from subledger.core.profile_ref import ProfileRef
from subledger.legacy import rules, service
from subledger.legacy.schemas import StripeValidation, V1Attributes, V1Create, V1Grant, V1Revoke

router = api_router("/api/v1/sdk", "legacy v1")

TRUE = {"1", "true", "True"}


async def _ref(request: Request, app_id: UUID) -> ProfileRef:
    base64url = request.query_params.get("is_user_id_base64url_encoded") in TRUE
    path_id = rules.path_id(request.scope["raw_path"] or request.scope["path"].encode(), base64url)
    runtime = runtime_of(request)
    ref: ProfileRef = await runtime.read(service.resolve, runtime, app_id, path_id)
    return ref


@router.post("/profiles/", summary="Create a profile (v1)")
async def create(request: Request, app_id: CurrentApp, body: Annotated[V1Create, Body()]) -> Response:
    runtime = runtime_of(request)
    return JSONResponse(await runtime.write(service.create, runtime, app_id, body))


@router.get("/profiles/{id:path}/", summary="Get a profile (v1); ?extended adds personal fields")
async def get(request: Request, app_id: CurrentApp, id: str) -> Response:
    runtime = runtime_of(request)
    extended = "extended" in request.query_params
    return JSONResponse(await runtime.read(service.get, runtime, app_id, await _ref(request, app_id), extended))


@router.patch("/profiles/{id:path}/", summary="Update a profile (v1)")
async def update(request: Request, app_id: CurrentApp, id: str, body: Annotated[V1Attributes, Body()]) -> Response:
    runtime = runtime_of(request)
    return JSONResponse(await runtime.write(service.update, runtime, app_id, await _ref(request, app_id), body))


@router.delete("/profiles/{id:path}/delete/", status_code=204, response_class=Response, summary="Delete a profile (v1)")
async def delete(request: Request, app_id: CurrentApp, id: str) -> Response:
    runtime = runtime_of(request)
    await runtime.write(service.delete, runtime, app_id, await _ref(request, app_id))
    return Response(status_code=204)


@router.post("/profiles/{id:path}/paid-access-levels/{access_level}/grant/", summary="Grant an access level (v1)")
async def grant(
    request: Request, app_id: CurrentApp, id: str, access_level: str, body: Annotated[V1Grant, Body()]
) -> Response:
    runtime = runtime_of(request)
    ref = await _ref(request, app_id)
    return JSONResponse(await runtime.write(service.grant, runtime, app_id, ref, access_level, body))


@router.post("/profiles/{id:path}/paid-access-levels/{access_level}/revoke/", summary="Revoke an access level (v1)")
async def revoke(
    request: Request, app_id: CurrentApp, id: str, access_level: str, body: Annotated[V1Revoke, Body()]
) -> Response:
    runtime = runtime_of(request)
    ref = await _ref(request, app_id)
    return JSONResponse(await runtime.write(service.revoke, runtime, app_id, ref, access_level, body))


class JsonApiResponse(JSONResponse):
    media_type = "application/vnd.api+json"


STRIPE_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            JsonApiResponse.media_type: {"schema": StripeValidation.model_json_schema()},
            "application/json": {"schema": StripeValidation.model_json_schema()},
        },
    }
}


@router.post(
    "/purchase/stripe/token/validate/",
    summary='Import a Stripe subscription or payment intent, and its history; answers {"data": null}',
    openapi_extra=STRIPE_BODY,
)
async def validate_stripe(request: Request, app_id: CurrentApp) -> Response:
    """A JSON:API endpoint: the body is read here, so that every error it answers is in JSON:API's shape."""
    runtime = runtime_of(request)
    try:
        body = StripeValidation.model_validate(strict_json.loads(await request.body()))
        await runtime.remote_write(service.validate_stripe, runtime, app_id, body)
    except json.JSONDecodeError as exc:
        error = ApiError.one(400, "parse_error", NON_FIELD, f"JSON parse error - {exc}")
    except ValidationError as invalid:
        error = from_validation_errors(invalid.errors())
    except ApiError as refused:
        error = refused
    else:
        return JsonApiResponse({"data": None})
    return JsonApiResponse(rules.json_api_errors(error), status_code=error.status, headers=error.headers)
