"""HTTP routes of the purchase API: set transaction, grant and revoke access levels."""

from typing import Annotated

from fastapi import Body, Request
from starlette.responses import Response

from subledger.core.addressing import PROFILE_HEADERS, profile_ref
from subledger.core.http import JSONResponse, api_router
from subledger.profiles.schemas import ProfileEnvelope
from subledger.purchases import service
from subledger.purchases.schemas import GrantIn, RevokeIn, TransactionIn

router = api_router("/api/v2/server-side-api", "purchase")
PROFILE = {"response_model": ProfileEnvelope, "openapi_extra": PROFILE_HEADERS}


@router.post("/purchase/set/transaction/", summary="Set a transaction", **PROFILE)
async def set_transaction(request: Request, body: Annotated[TransactionIn, Body()]) -> Response:
    runtime = request.app.state.runtime
    ref = profile_ref(request)
    return JSONResponse(await runtime.write(service.set_transaction, runtime, request.state.app_id, ref, body))


@router.post("/purchase/profile/grant/access-level/", summary="Grant an access level", **PROFILE)
async def grant(request: Request, body: Annotated[GrantIn, Body()]) -> Response:
    runtime = request.app.state.runtime
    ref = profile_ref(request)
    return JSONResponse(await runtime.write(service.grant_access_level, runtime, request.state.app_id, ref, body))


@router.post("/purchase/profile/revoke/access-level/", summary="Revoke an access level", **PROFILE)
async def revoke(request: Request, body: Annotated[RevokeIn, Body()]) -> Response:
    runtime = request.app.state.runtime
    ref = profile_ref(request)
    return JSONResponse(await runtime.write(service.revoke_access_level, runtime, request.state.app_id, ref, body))
