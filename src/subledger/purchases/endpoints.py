"""HTTP routes of the purchase API: set transaction, grant and revoke access levels."""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Body, Depends, Request
from starlette.responses import Response

from subledger.core.addressing import ProfileRef, current_app, profile_ref
from subledger.core.http import ERROR_RESPONSES, JSONResponse
from subledger.profiles.schemas import ProfileEnvelope
from subledger.purchases import service
from subledger.purchases.schemas import GrantIn, RevokeIn, TransactionIn

router = APIRouter(prefix="/api/v2/server-side-api", tags=["purchase"], responses=ERROR_RESPONSES)

App = Annotated[UUID, Depends(current_app)]
Ref = Annotated[ProfileRef, Depends(profile_ref)]


@router.post("/purchase/set/transaction/", response_model=ProfileEnvelope, summary="Set a transaction")
async def set_transaction(request: Request, app_id: App, ref: Ref, body: Annotated[TransactionIn, Body()]) -> Response:
    runtime = request.app.state.runtime
    return JSONResponse(await runtime.write(service.set_transaction, runtime, app_id, ref, body))


@router.post("/purchase/profile/grant/access-level/", response_model=ProfileEnvelope, summary="Grant an access level")
async def grant(request: Request, app_id: App, ref: Ref, body: Annotated[GrantIn, Body()]) -> Response:
    runtime = request.app.state.runtime
    return JSONResponse(await runtime.write(service.grant_access_level, runtime, app_id, ref, body))


@router.post("/purchase/profile/revoke/access-level/", response_model=ProfileEnvelope, summary="Revoke an access level")
async def revoke(request: Request, app_id: App, ref: Ref, body: Annotated[RevokeIn, Body()]) -> Response:
    runtime = request.app.state.runtime
    return JSONResponse(await runtime.write(service.revoke_access_level, runtime, app_id, ref, body))
