"""Stripe's webhook route."""

from fastapi import Request
from starlette.responses import Response

from subledger.core.http import api_router
from subledger.stores.http import signed_notification
from subledger.stores.stripe import service

router = api_router("/stores/stripe", "store notifications")


@router.post("/{app_id}/webhook/", summary="Stripe webhooks for an app")
async def webhook(request: Request, app_id: str) -> Response:
    return await signed_notification(request, app_id, service.receive_webhook, "stripe-signature")
