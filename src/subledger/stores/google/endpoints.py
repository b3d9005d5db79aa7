"""Google Play routes: Pub/Sub pushes of developer notifications, and purchase tokens posted by the app's server."""

from typing import Annotated, Literal

from fastapi import Body, Request
from pydantic import StringConstraints
from starlette.responses import Response

from subledger.core.addressing import PROFILE_HEADERS, profile_ref
from subledger.core.errors import bad_request
from subledger.core.fields import NonEmpty255, Strict
from subledger.core.http import JSONResponse, api_router, runtime_of
from subledger.profiles.schemas import ProfileEnvelope
from subledger.stores.google import service
from subledger.stores.http import answered, path_app, remote_address

router = api_router("/stores/play-store", "store notifications")
api = api_router("/api/v2/server-side-api", "purchase")


class PurchaseTokenIn(Strict):
    purchase_type: Literal["subscription", "one_time_purchase"]
    # Required for a one-time product (Play's products API is addressed by product).
    store_product_id: NonEmpty255 | None = None
    purchase_token: Annotated[str, StringConstraints(strict=True, min_length=1, max_length=4096, pattern=r"^[\w.\-]+$")]


@router.post("/{app_id}/notifications/", summary="Google Play Real-time Developer Notifications (Pub/Sub push)")
async def notifications(request: Request, app_id: str) -> Response:
    runtime = runtime_of(request)
    body = await request.body()
    token = request.query_params.get("token")
    authorization = request.headers.get("authorization")
    status = await runtime.remote_write(
        service.receive_notification, runtime, path_app(app_id), body, token, authorization, remote_address(request)
    )
    return answered(status)


@api.post(
    "/purchase/play-store/token/validate/",
    summary="Record a Google Play purchase token for a profile",
    response_model=ProfileEnvelope,
    openapi_extra=PROFILE_HEADERS,
)
async def validate(request: Request, body: Annotated[PurchaseTokenIn, Body()]) -> Response:
    if body.purchase_type == "one_time_purchase" and body.store_product_id is None:
        raise bad_request("base_error", "store_product_id", "This field is required for a one-time purchase.")
    runtime = runtime_of(request)
    ref = profile_ref(request)
    args = (runtime, request.state.app_id, ref, body.purchase_type, body.store_product_id, body.purchase_token)
    return JSONResponse(await runtime.remote_write(service.record_token, *args))
