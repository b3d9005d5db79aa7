"""What the stores' notification routes share.

Stores cannot send an app's API key: their routes live under ``/stores/``
(outside the key-checked ``/api/``) with the app's id in the path, and each
store's own signature or token proves where a notification comes from.
"""

from collections.abc import Callable
from uuid import UUID

from fastapi import Request
from starlette.responses import Response

from subledger.core.errors import NON_FIELD, ApiError
from subledger.core.http import JSONResponse, runtime_of


def remote_address(request: Request) -> str | None:
    return request.client.host if request.client else None


async def signed_notification(
    request: Request, app_id: str, receive: Callable[..., str], signature_header: str
) -> Response:
    """A notification signed in a header (Stripe's, Paddle's): its raw body and signature handed
    to ``receive(runtime, app, body, signature, remote address)``, answered with what became of it."""
    runtime = runtime_of(request)
    body = await request.body()
    signature = request.headers.get(signature_header)
    status = await runtime.remote_write(receive, runtime, path_app(app_id), body, signature, remote_address(request))
    return answered(status)


def answered(status: str) -> Response:
    """200 whatever became of a verified notification (applied, kept, a duplicate...): the
    store has delivered it and must not send it again."""
    return JSONResponse({"status": status})


def path_app(value: str) -> UUID:
    """The app named in a notification URL; 404 when it is not an app id at all."""
    try:
        return UUID(value)
    except ValueError:
        raise ApiError.one(404, "not_found", NON_FIELD, "No notifications are accepted at this URL.") from None
