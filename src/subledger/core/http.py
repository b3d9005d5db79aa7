"""HTTP plumbing every feature shares: JSON responses, error handlers, middleware."""

import csv
import io
import logging
import time
from collections.abc import Callable, Coroutine, Iterable, Sequence
from typing import Any

import orjson
from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from subledger.core import db, strict_json
from subledger.core.errors import NON_FIELD, ApiError, from_validation_errors
from subledger.core.runtime import Runtime

log = logging.getLogger("subledger")

# The Web API, which browsers call with an app's public key (see ``web_api.access``).
WEB_API_PATH = "/api/v2/web-api/"

# Shown in the OpenAPI document for every endpoint that can fail.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"description": description, "content": {"application/json": {"example": example}}}
    for status, description, example in [
        (
            400,
            "Invalid request",
            {
                "errors": [{"source": "gender", "errors": ["Input should be 'f', 'm' or 'o'"]}],
                "error_code": "invalid_enumeration_member",
                "status_code": 400,
            },
        ),
        (
            401,
            "Missing or unknown API key",
            {
                "errors": [{"source": NON_FIELD, "errors": ["Invalid API key."]}],
                "error_code": "not_authenticated",
                "status_code": 401,
            },
        ),
        (
            404,
            "No such profile",
            {
                "errors": [{"source": None, "errors": ["Profile not found"]}],
                "error_code": "profile_does_not_exist",
                "status_code": 404,
            },
        ),
    ]
}


def csv_response(rows: Iterable[dict[str, Any]], columns: Sequence[str], filename: str | None = None) -> Response:
    """``rows`` as CSV with a header of ``columns`` (what a row has beside them is left out, what it
    lacks or holds as None is an empty cell); ``filename`` makes it a download."""
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows({name: "" if row.get(name) is None else row[name] for name in columns} for row in rows)
    headers = {"content-disposition": f'attachment; filename="{filename}"'} if filename else None
    return Response(text.getvalue(), media_type="text/csv", headers=headers)


def runtime_of(request: Request) -> Runtime:
    """The server's runtime. A plain function rather than a FastAPI dependency: resolving a
    dependency took about 25 µs a request, some 6% of a GET profile."""
    runtime: Runtime = request.app.state.runtime
    return runtime


class _StrictJsonRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = strict_json.loads(await self.body())
            # PHP's json_encode() writes an empty associative array as []: an empty object.
            self._json = {} if body == [] else body
        return self._json


class StrictJsonRoute(APIRoute):
    """A route whose JSON body is parsed by ``core.strict_json``, which keeps to the JSON standard
    where Python's json module does not: NaN, Infinity, numbers beyond a double's range, unpaired
    surrogates and nesting over 1,024 levels are a parse error, instead of values that no
    response or database column could hold; integers beyond 64 bits are kept whole. A body of
    ``[]`` is read as ``{}``."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if self.body_field is None:
            return handler  # nothing to parse: no second Request object per call

        async def strict(request: Request) -> Response:
            return await handler(_StrictJsonRequest(request.scope, request.receive))

        return strict


def api_router(prefix: str, tag: str) -> APIRouter:
    """A router of API endpoints: JSON bodies parsed strictly, the error responses documented."""
    return APIRouter(prefix=prefix, tags=[tag], responses=ERROR_RESPONSES, route_class=StrictJsonRoute)


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def error_response(error: ApiError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.status, headers=error.headers)


async def _api_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)  # the handler of ApiError alone
    return error_response(exc)


async def _validation_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return error_response(from_validation_errors(exc.errors(), strip=1))


_HTTP_CODES = {404: "not_found", 405: "method_not_allowed"}


async def _http_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "error")
    response = error_response(ApiError.one(exc.status_code, code, None, str(exc.detail)))
    response.headers.update(exc.headers or {})
    return response


async def _unexpected(_request: Request, exc: Exception) -> Response:
    log.exception("unhandled error", exc_info=exc)
    return error_response(ApiError.one(500, "internal_error", None, "Internal server error."))


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)


def header_text(value: str | None) -> str | None:
    """A header value as the client meant it: UTF-8 bytes arrive decoded as Latin-1."""
    if value is None:
        return None
    try:
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value


class RequestShape:
    """ASGI middleware: the request shapes the contract allows.

    - on the API and store paths, ``/path`` is served as ``/path/`` (no redirect);
    - a URL with a NUL character is refused (no database could store it);
    - on the API paths, a body is JSON whatever its Content-Type says (clients
      often send none, or curl's form default), so it is validated as JSON,
      never as form data;
    - every body is read up to the limit (the Web API's smaller one on its paths) before the
      application sees it, so an oversized request is answered 413 without touching anything.
    """

    def __init__(self, app: ASGIApp, max_body_bytes: int, web_api_max_body_bytes: int):
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.web_api_max_body_bytes = web_api_max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if "\x00" in scope["path"] or b"%00" in scope["query_string"]:
            error = ApiError.one(400, "base_error", NON_FIELD, "Null characters are not allowed in the URL.")
            return await error_response(error)(scope, receive, send)
        if scope["path"].startswith("/api/"):
            scope = {**scope, "headers": _json_content_type(scope["headers"])}
        if scope["path"].startswith(("/api/", "/stores/")) and not scope["path"].endswith("/"):
            raw_path = scope.get("raw_path")
            scope.update(path=scope["path"] + "/", raw_path=raw_path + b"/" if raw_path else None)

        limit = self.web_api_max_body_bytes if scope["path"].startswith(WEB_API_PATH) else self.max_body_bytes
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            return await self._too_large(scope, receive, send, limit)

        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            more = message.get("more_body", False)
            if size > limit:
                return await self._too_large(scope, receive, send, limit)
        body = b"".join(chunks)

        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        error = ApiError.one(413, "request_too_large", NON_FIELD, f"Request body is larger than {limit} bytes.")
        await error_response(error)(scope, receive, send)


def _json_content_type(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    kept = [(name, value) for name, value in headers if name != b"content-type"]
    for name, value in headers:
        if name == b"content-type" and value.split(b";")[0].strip().lower().endswith((b"/json", b"+json")):
            kept.append((name, value))
            return kept
    kept.append((b"content-type", b"application/json"))
    return kept


class RedactStoreQueries(logging.Filter):
    """Access-log lines keep no query string of a store's URL: a push path's holds its secret."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        # uvicorn's access lines: (client address, method, path with query, HTTP version, status)
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str) and args[2].startswith("/stores/"):
            record.args = (*args[:2], args[2].split("?", 1)[0], *args[3:])
        return True


def redact_access_log() -> None:
    """Have uvicorn's access log leave out the query strings of stores' URLs (once a process)."""
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(existing, RedactStoreQueries) for existing in access.filters):
        access.addFilter(RedactStoreQueries())


class DatabaseUnavailable:
    """ASGI middleware, outermost: a request that found the database unreachable, restarting or
    failed over (``core.db.unavailable``) is answered 503 ``database_unavailable`` with
    ``Retry-After: 1`` (nothing of it was done), wherever it was raised, middleware included.
    One line is logged every ``LOG_EVERY`` seconds at most, however many requests meet it."""

    LOG_EVERY = 5.0

    def __init__(self, app: ASGIApp):
        self.app = app
        self._logged_at = float("-inf")
        self._unlogged = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception as exc:
            if started or not db.unavailable(exc):
                raise
            self._note(exc)
            error = ApiError.one(503, "database_unavailable", None, "The database is unavailable; try again shortly.")
            await error_response(error.retry_after(1))(scope, receive, send)

    def _note(self, exc: Exception) -> None:
        self._unlogged += 1
        now = time.monotonic()
        if now - self._logged_at >= self.LOG_EVERY:
            log.warning("database unavailable (%d requests answered 503): %s", self._unlogged, exc)
            self._logged_at, self._unlogged = now, 0
