"""Who may call the Web API: browsers, with an app's public key.

An ASGI middleware on ``/api/v2/web-api/`` answers CORS preflights, checks the public key (a
secret key is refused there, as a public key is everywhere else), lets a page call only an app
that lists its origin, and keeps the Web API's own rate limits, per key and per client address,
in each server process: the key is public, so anyone may try it.
"""

from collections import OrderedDict
from uuid import UUID

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from subledger.apps.rules import PUBLIC, throttled
from subledger.core import buckets
from subledger.core.addressing import authenticated
from subledger.core.errors import NON_FIELD, ApiError
from subledger.core.http import WEB_API_PATH, error_response

PREFLIGHT_HEADERS = {
    "Access-Control-Allow-Methods": "POST, OPTIONS",
    "Access-Control-Allow-Headers": "authorization, content-type",
    "Access-Control-Max-Age": "600",
}
# Addresses whose rate this process remembers; the least recently seen are forgotten first.
MAX_ADDRESSES = 100_000


class RateLimits:
    """Token buckets (``core.buckets``) of this process, per public key and per client address."""

    def __init__(self, per_key: float, per_address: float):
        self._rates = {"key": per_key, "address": per_address}
        self._full_at: OrderedDict[tuple[str, object], float] = OrderedDict()

    def admit(self, app_id: UUID, address: str, now: float) -> None:
        """Take one request from both buckets; the contract's 429 (with Retry-After) when either is empty.
        On the event loop, without I/O: no other task runs between the two takes."""
        taken = []
        for bucket in (("key", app_id), ("address", address)):
            rate = self._rates[bucket[0]]
            granted, full_at, wait = buckets.take(self._full_at.get(bucket, 0.0), now, rate, 2 * rate, 1)
            if not granted:
                raise throttled(wait)
            taken.append((bucket, full_at))
        for bucket, full_at in taken:
            self._full_at[bucket] = full_at
            self._full_at.move_to_end(bucket)
        while len(self._full_at) > 2 * MAX_ADDRESSES:
            self._full_at.popitem(last=False)


def _with_headers(send: Send, extra: dict[str, str]) -> Send:
    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = MutableHeaders(scope=message)
            for name, value in extra.items():
                headers[name] = value
        await send(message)

    return sending


def _cors(origin: str) -> dict[str, str]:
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}


class WebApiAccess:
    def __init__(self, app: ASGIApp, per_key: float, per_address: float):
        self.app = app
        self.limits = RateLimits(per_key, per_address)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(WEB_API_PATH):
            return await self.app(scope, receive, send)
        state = scope["app"].state
        runtime, policy = state.runtime, state.web_origins
        origin = Headers(scope=scope).get("origin")
        if scope["method"] == "OPTIONS" and origin is not None:
            return await self._preflight(scope, receive, send, origin)
        try:
            key = await authenticated(scope, PUBLIC)
            if origin is not None and not await runtime.read(policy.allows, key.app_id, origin):
                raise ApiError.one(
                    403, "origin_not_allowed", NON_FIELD, f"Pages of {origin} may not call this app's Web API."
                )
            address = (scope.get("client") or ("unknown",))[0]
            self.limits.admit(key.app_id, address, runtime.clock.now().timestamp())
        except ApiError as error:
            response = error_response(error)
            # A page of an origin some app allows may read why it was refused.
            if origin is not None and await runtime.read(policy.known, origin):
                response.headers.update(_cors(origin))
            return await response(scope, receive, send)
        scope.setdefault("state", {})["app_id"] = key.app_id
        await self.app(scope, receive, _with_headers(send, _cors(origin)) if origin else send)

    async def _preflight(self, scope: Scope, receive: Receive, send: Send, origin: str) -> None:
        """A browser asks whether a page of ``origin`` may call: it names no key, so the answer is
        whether some app allows the origin; the call itself is checked against its own app."""
        runtime = scope["app"].state.runtime
        if not await runtime.read(scope["app"].state.web_origins.known, origin):
            error = ApiError.one(403, "origin_not_allowed", NON_FIELD, f"Pages of {origin} may not call the Web API.")
            return await error_response(error)(scope, receive, send)
        await Response(status_code=204, headers={**_cors(origin), **PREFLIGHT_HEADERS})(scope, receive, send)
