"""HTTP routes of the purchase API: set transaction, grant and revoke access levels; and the admin
API's product writes."""

from typing import Annotated
from uuid import UUID

from fastapi import Body, Request
from starlette.responses import Response

from subledger.catalog.schemas import ProductIn
from subledger.core.addressing import PROFILE_HEADERS, CurrentApp, profile_ref
from subledger.core.errors import ApiError
from subledger.core.http import JSONResponse, api_router, runtime_of
from subledger.profiles.schemas import ProfileEnvelope
from subledger.purchases import service
from subledger.purchases.schemas import GrantIn, RevokeIn, TransactionIn

router = api_router("/api/v2/server-side-api", "purchase")


@router.post(
    "/purchase/set/transaction/",
    summary="Set a transaction",
    response_model=ProfileEnvelope,
    openapi_extra=PROFILE_HEADERS,
)
async def set_transaction(request: Request, body: Annotated[TransactionIn, Body()]) -> Response:
    runtime = runtime_of(request)
    ref = profile_ref(request)
    return JSONResponse(await runtime.write(service.set_transaction, runtime, request.state.app_id, ref, body))


@router.post(
    "/purchase/profile/grant/access-level/",
    summary="Grant an access level",
    response_model=ProfileEnvelope,
    openapi_extra=PROFILE_HEADERS,
)
async def grant(request: Request, body: Annotated[GrantIn, Body()]) -> Response:
    runtime = runtime_of(request)
    ref = profile_ref(request)
    return JSONResponse(await runtime.write(service.grant_access_level, runtime, request.state.app_id, ref, body))


@router.post(
    "/purchase/profile/revoke/access-level/",
    summary="Revoke an access level",
    response_model=ProfileEnvelope,
    openapi_extra=PROFILE_HEADERS,
)
async def revoke(request: Request, body: Annotated[RevokeIn, Body()]) -> Response:
    runtime = runtime_of(request)
    ref = profile_ref(request)
    return JSONResponse(await runtime.write(service.revoke_access_level, runtime, request.state.app_id, ref, body))


# Admin API: a product's creation and removal, which recompute its buyers' access ---------------

admin = api_router("/api/admin/v1", "admin: catalog")


@admin.post("/products/", status_code=201, summary="Create a product")
async def create_product(request: Request, app_id: CurrentApp, body: Annotated[ProductIn, Body()]) -> Response:
    runtime = runtime_of(request)
    created = await runtime.write(service.add_product, runtime, app_id, body)
    return JSONResponse({"data": created}, status_code=201)


@admin.delete("/products/{product_id}/", status_code=204, response_class=Response, summary="Delete a product")
async def delete_product(request: Request, app_id: CurrentApp, product_id: str) -> Response:
    try:
        parsed = UUID(product_id)
    except ValueError:
        raise ApiError.one(404, "product_does_not_exist", None, "Product not found") from None
    runtime = runtime_of(request)
    await runtime.write(service.remove_product, runtime, app_id, parsed)
    return Response(status_code=204)
