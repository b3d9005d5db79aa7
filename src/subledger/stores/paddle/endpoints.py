"""Paddle's routes: a purchase the app's server validates by its Paddle id, and Paddle's notifications."""

from typing import Annotated

from fastapi import Body, Request
from pydantic import StringConstraints
from starlette.responses import Response

from subledger.core.fields import NonEmpty255, Strict
from subledger.core.http import JSONResponse, api_router, runtime_of
from subledger.profiles.schemas import ProfileEnvelope
from subledger.stores.http import signed_notification
from subledger.stores.paddle import service

api = api_router("/api/v2/server-side-api", "purchase")
router = api_router("/stores/paddle", "store notifications")


class PaddleTokenIn(Strict):
    """The contract's PaddleValidationRequest."""

    customer_user_id: NonEmpty255
    # A transaction (txn_...) or subscription (sub_...) id: it becomes part of a URL path.
    paddle_token: Annotated[str, StringConstraints(strict=True, pattern=r"^[A-Za-z0-9_]{1,255}$")]


@api.post(
    "/purchase/paddle/token/validate/",
    summary="Import a Paddle purchase and its history for a customer_user_id",
    response_model=ProfileEnvelope,
)
async def validate(request: Request, body: Annotated[PaddleTokenIn, Body()]) -> Response:
    runtime = runtime_of(request)
    args = (runtime, request.state.app_id, body.customer_user_id, body.paddle_token)
    return JSONResponse(await runtime.remote_write(service.validate, *args))


@router.post("/{app_id}/notifications/", summary="Paddle notifications for an app")
async def notifications(request: Request, app_id: str) -> Response:
    return await signed_notification(request, app_id, service.receive_notification, "paddle-signature")
