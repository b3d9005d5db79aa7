"""Admin API for an app's catalog: ``/api/admin/v1/access-levels/`` and the list of ``/products/``
(a product's creation and removal change what its buyers may access: ``purchases.endpoints``).

Authenticated with the app's own secret key, like the contract endpoints.
"""

from typing import Annotated

from fastapi import Body, Request
from starlette.responses import Response

from subledger.catalog import service
from subledger.catalog.schemas import AccessLevelIn
from subledger.core.addressing import CurrentApp
from subledger.core.http import JSONResponse, api_router, runtime_of

router = api_router("/api/admin/v1", "admin: catalog")


@router.get("/access-levels/", summary="List access levels")
async def list_access_levels(request: Request, app_id: CurrentApp) -> Response:
    runtime = runtime_of(request)
    return JSONResponse({"data": await runtime.read(service.list_access_levels, runtime, app_id)})


@router.post("/access-levels/", status_code=201, summary="Create an access level")
async def create_access_level(request: Request, app_id: CurrentApp, body: Annotated[AccessLevelIn, Body()]) -> Response:
    runtime = runtime_of(request)
    created = await runtime.write(service.create_access_level, runtime, app_id, body)
    return JSONResponse({"data": created}, status_code=201)


@router.delete(
    "/access-levels/{access_level_id}/",
    status_code=204,
    response_class=Response,
    summary="Delete an access level no product or grant uses",
)
async def delete_access_level(request: Request, app_id: CurrentApp, access_level_id: str) -> Response:
    runtime = runtime_of(request)
    await runtime.write(service.delete_access_level, runtime, app_id, access_level_id)
    return Response(status_code=204)


@router.get("/products/", summary="List products")
async def list_products(request: Request, app_id: CurrentApp) -> Response:
    runtime = runtime_of(request)
    return JSONResponse({"data": await runtime.read(service.list_products, runtime, app_id)})
