"""HTTP routes of virtual currencies: the contract's (the profile in the headers) and the
admin API's currencies and product credits."""

from collections.abc import Callable
from typing import Annotated, Any
from uuid import UUID

from fastapi import Body, Request
from pydantic import ValidationError
from starlette.responses import Response

from subledger.core import strict_json
from subledger.core.addressing import PROFILE_HEADERS, CurrentApp, profile_ref
from subledger.core.errors import ApiError, bad_request, from_validation_errors
from subledger.core.fields import whole_number
from subledger.core.http import JSONResponse, api_router, runtime_of
from subledger.currencies import rules, service
from subledger.currencies.schemas import CurrencyChange, CurrencyIn, ProductGrantsIn, SettingsIn, TransactionIn

router = api_router("/api/v2/server-side-api", "virtual currencies")
admin = api_router("/api/admin/v1", "admin: virtual currencies")

MAX_LIMIT = 100
IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "format": "uuid"},
    "description": "A UUID v4: a retry with the same key answers the first answer and changes nothing again.",
}


def _transaction_schema() -> dict[str, Any]:
    """The request body's JSON schema with its one nested model written in place (the body is
    read by hand, for the contract's 422, so FastAPI does not document it)."""
    schema = TransactionIn.model_json_schema()
    schema["properties"]["items"]["items"] = schema.pop("$defs")["ItemIn"]
    return schema


TRANSACTION_REQUEST = {
    "parameters": [*PROFILE_HEADERS["parameters"], IDEMPOTENCY_KEY],
    "requestBody": {"required": True, "content": {"application/json": {"schema": _transaction_schema()}}},
}


def _idempotency_key(request: Request) -> None:
    """The contract's Idempotency-Key here is a UUID v4 (``core.idempotency`` keeps the answers)."""
    key = request.headers.get("idempotency-key")
    if key is None:
        return
    try:
        valid = UUID(key).version == 4 and len(key) == 36
    except ValueError:
        valid = False
    if not valid:
        raise bad_request("idempotency_key_invalid", "Idempotency-Key", "Idempotency-Key must be a valid UUID v4.")


def _transaction(body: bytes) -> TransactionIn:
    """The request body; a body that does not fit the schema is the contract's 422."""
    try:
        value = strict_json.loads(body)
    except ValueError as error:
        raise bad_request("parse_error", None, f"JSON parse error - {error}") from None
    try:
        return TransactionIn.model_validate(value)
    except ValidationError as invalid:
        refused = from_validation_errors(invalid.errors())
        raise ApiError(422, "validation_error", refused.errors) from None


async def _admitted(request: Request) -> None:
    """The contract's per-app rate limit of the transactions endpoint (429 past it)."""
    state = request.app.state
    rate = state.runtime.settings.virtual_currency_rate_per_minute / 60
    await state.currency_rate_limits.take(state.runtime, request.state.app_id, rate)


@router.post("/vc/transactions/", summary="Create virtual currency transaction", openapi_extra=TRANSACTION_REQUEST)
async def create_transaction(request: Request) -> Response:
    await _admitted(request)
    ref = profile_ref(request)
    _idempotency_key(request)
    body = _transaction(await request.body())
    runtime = runtime_of(request)
    return JSONResponse(await runtime.write(service.transact, runtime, request.state.app_id, ref, body))


@router.get("/vc/transactions/", summary="List virtual currency transactions", openapi_extra=PROFILE_HEADERS)
async def list_transactions(request: Request) -> Response:
    ref = profile_ref(request)
    query = request.query_params
    limit = 50 if "limit" not in query else whole_number(query["limit"], 1, MAX_LIMIT)
    if limit is None:
        raise bad_request("validation_error", "limit", f"Must be an integer from 1 to {MAX_LIMIT}.")
    runtime = runtime_of(request)
    code, cursor = query.get("currency_code"), query.get("cursor")
    return JSONResponse(await runtime.read(service.history, runtime, request.state.app_id, ref, code, cursor, limit))


@router.get("/vc/balances/", summary="List virtual currency balances", openapi_extra=PROFILE_HEADERS)
async def list_balances(request: Request) -> Response:
    runtime = runtime_of(request)
    return JSONResponse(await runtime.read(service.balances, runtime, request.state.app_id, profile_ref(request)))


# Admin API ---------------------------------------------------------------------------


async def _admin(request: Request, function: Callable[..., Any], *args: Any) -> Response:
    runtime = runtime_of(request)
    try:
        return JSONResponse({"data": await runtime.write(function, runtime, *args)})
    except rules.CurrencyError as error:
        raise bad_request("base_error", None, str(error)) from None


@admin.get("/virtual-currencies/", summary="Whether virtual currencies are on, and the app's currencies")
async def get_settings(request: Request, app_id: CurrentApp) -> Response:
    runtime = runtime_of(request)
    return JSONResponse({"data": await runtime.read(service.settings, runtime, app_id)})


@admin.patch("/virtual-currencies/", summary="Turn the virtual currency endpoints on or off")
async def set_settings(request: Request, app_id: CurrentApp, body: Annotated[SettingsIn, Body()]) -> Response:
    return await _admin(request, service.enable, app_id, body.enabled)


@admin.post("/virtual-currencies/currencies/", summary="Add a currency", status_code=201)
async def add_currency(request: Request, app_id: CurrentApp, body: Annotated[CurrencyIn, Body()]) -> Response:
    response = await _admin(request, service.add_currency, app_id, body.code, body.name)
    response.status_code = 201
    return response


@admin.patch("/virtual-currencies/currencies/{code}/", summary="Rename a currency")
async def rename_currency(
    request: Request, app_id: CurrentApp, code: str, body: Annotated[CurrencyChange, Body()]
) -> Response:
    return await _admin(request, service.rename_currency, app_id, code, body.name)


@admin.delete("/virtual-currencies/currencies/{code}/", summary="Delete a currency nothing has used", status_code=204)
async def delete_currency(request: Request, app_id: CurrentApp, code: str) -> Response:
    await _admin(request, service.remove_currency, app_id, code)
    return Response(status_code=204)


@admin.put("/virtual-currencies/products/{product_id}/", summary="What buying a product credits")
async def set_product_grants(
    request: Request, app_id: CurrentApp, product_id: UUID, body: Annotated[ProductGrantsIn, Body()]
) -> Response:
    grants = [(grant.currency_code, grant.amount) for grant in body.grants]
    return await _admin(request, service.set_product_grants, app_id, product_id, grants)
