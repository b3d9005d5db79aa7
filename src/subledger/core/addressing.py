"""Authentication and profile addressing: the headers every profile-scoped endpoint reads."""

from typing import Annotated, Any
from uuid import UUID

from fastapi import Depends, Header, Request
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from subledger.core.errors import NON_FIELD, ApiError, bad_request, not_authenticated
from subledger.core.http import WEB_API_PATH, error_response, header_text
from subledger.core.profile_ref import ProfileRef

MAX_CUSTOMER_USER_ID = 255


async def authenticated(scope: Scope, kind: str) -> Any:  # the apps feature's Key (core cannot name it)
    """The key of the request's ``Authorization`` header (``apps.service.Key``), if it is of
    ``kind``; the contract's 401 otherwise, the same whichever way it is wrong."""
    state = scope["app"].state
    header = header_text(Headers(scope=scope).get("authorization"))
    key = state.authenticator.cached(header)
    if key is None:
        key = await state.runtime.read(state.authenticator.authenticate, header)
    if key.kind != kind:
        raise not_authenticated("Invalid API key.")
    return key


class ApiKeyAuth:
    """ASGI middleware: every API request carries an app's secret key, checked before anything else.

    Runs ahead of routing and body parsing, so a request without a valid key
    learns nothing about paths or validation, and applies the app's rate
    limit. The app's id lands in ``request.state.app_id``. The Web API has its
    own (``web_api.access``).
    """

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"] if scope["type"] == "http" else ""
        if not path.startswith("/api/") or path.startswith(WEB_API_PATH):
            return await self.app(scope, receive, send)
        state = scope["app"].state
        try:
            key = await authenticated(scope, "secret")
            await state.rate_limits.take(state.runtime, key.app_id, key.rate_limit)
        except ApiError as error:
            return await error_response(error)(scope, receive, send)
        scope.setdefault("state", {})["app_id"] = key.app_id
        await self.app(scope, receive, send)


async def current_app(
    request: Request,
    authorization: str | None = Header(default=None, description="`Api-Key <secret>`"),
) -> UUID:
    """The app whose key the request carries (checked by ``ApiKeyAuth``)."""
    app_id: UUID = request.state.app_id
    return app_id


# An endpoint's parameter for the app whose secret key the request carries.
CurrentApp = Annotated[UUID, Depends(current_app)]


def _header(name: str, description: str, required: bool = False) -> dict[str, Any]:
    return {
        "name": name,
        "in": "header",
        "required": required,
        "schema": {"type": "string"},
        "description": description,
    }


AUTHORIZATION = _header("authorization", "`Api-Key <secret>`", required=True)
CUSTOMER_USER_ID = _header("adapty-customer-user-id", "The app's own id of the user.")
PLATFORM = _header("adapty-platform", "The device platform (iOS, Android, ...), kept with the installation meta.")
# The OpenAPI parameters of the endpoints that address a profile (``openapi_extra``).
PROFILE_HEADERS = {
    "parameters": [AUTHORIZATION, CUSTOMER_USER_ID, _header("adapty-profile-id", "The profile's profile_id (a uuid).")]
}


def text_header(value: str | None, name: str, min_length: int = 0, max_length: int = 255) -> str | None:
    """A header's text as the client meant it (None when absent), kept as a field is: a 400
    naming the header when it is too short or too long for its column, or holds NUL."""
    value = header_text(value)
    if value is None:
        return None
    if not min_length <= len(value) <= max_length or "\x00" in value:
        length = f"{min_length} to {max_length}" if min_length else f"at most {max_length}"
        raise bad_request("base_error", name, f"Must be {length} characters long, without null characters.")
    return value


def customer_user_id_header(value: str | None) -> str | None:
    return text_header(value, "adapty-customer-user-id", min_length=1, max_length=MAX_CUSTOMER_USER_ID)


def profile_id_header(value: str | None) -> UUID | None:
    if value is None:
        return None
    try:
        return UUID(value.strip())
    except ValueError:
        raise bad_request("base_error", "adapty-profile-id", "Must be a valid UUID.") from None


def profile_ref(request: Request) -> ProfileRef:
    """The profile a request addresses; one of the two headers is required.

    Read straight from the headers: on the hottest endpoints FastAPI's
    dependency resolution costs as much as the database read. The OpenAPI
    document learns about the headers from ``PROFILE_HEADERS``.
    """
    headers = request.headers
    ref = ProfileRef(
        customer_user_id_header(headers.get("adapty-customer-user-id")),
        profile_id_header(headers.get("adapty-profile-id")),
    )
    if ref.customer_user_id is None and ref.profile_id is None:
        raise bad_request(
            "base_error", NON_FIELD, "Either adapty-customer-user-id or adapty-profile-id header is required."
        )
    return ref
