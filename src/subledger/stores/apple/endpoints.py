"""App Store routes: Server Notifications V2, and StoreKit transactions posted by the app's server."""

from typing import Annotated

from fastapi import Body, Request
from pydantic import StringConstraints
from starlette.responses import Response

from subledger.core.addressing import PROFILE_HEADERS, profile_ref
from subledger.core.fields import Strict
from subledger.core.http import JSONResponse, api_router, runtime_of
from subledger.profiles.schemas import ProfileEnvelope
from subledger.stores.apple import service
from subledger.stores.http import answered, path_app, remote_address

router = api_router("/stores/app-store", "store notifications")
api = api_router("/api/v2/server-side-api", "purchase")


class SignedTransactionIn(Strict):
    # A StoreKit 2 ``Transaction.jwsRepresentation``.
    signed_transaction: Annotated[str, StringConstraints(strict=True, min_length=1, max_length=65536)]


@router.post("/{app_id}/notifications/", summary="App Store Server Notifications V2 for an app")
async def notifications(request: Request, app_id: str) -> Response:
    runtime = runtime_of(request)
    body = await request.body()
    status = await runtime.remote_write(
        service.receive_notification, runtime, path_app(app_id), body, remote_address(request)
    )
    return answered(status)


@api.post(
    "/purchase/app-store/transaction/validate/",
    summary="Record a StoreKit 2 signed transaction for a profile",
    response_model=ProfileEnvelope,
    openapi_extra=PROFILE_HEADERS,
)
async def validate(request: Request, body: Annotated[SignedTransactionIn, Body()]) -> Response:
    runtime = runtime_of(request)
    ref = profile_ref(request)
    app_id = request.state.app_id
    remote = remote_address(request)
    return JSONResponse(
        await runtime.remote_write(service.record_transaction, runtime, app_id, ref, body.signed_transaction, remote)
    )
