"""Stripe's webhook route."""

from fastapi import Request
from starlette.responses import Response

from subledger.core.http import api_router
from subledger.stores.http import answered, path_app, remote_address
from subledger.stores.stripe import service

router = api_router("/stores/stripe", "store notifications")


@router.post("/{app_id}/webhook/", summary="Stripe webhooks for an app")
async def webhook(request: Request, app_id: str) -> Response:
    runtime = request.app.state.runtime
    body = await request.body()
    signature = request.headers.get("stripe-signature")
    status = await runtime.remote_write(
        service.receive_webhook, runtime, path_app(app_id), body, signature, remote_address(request)
    )
    return answered(status)
