"""Dashboard pages under ``/dashboard/``: server-rendered HTML, signed-in operators only.

A session is a random token in an HttpOnly, SameSite=Strict cookie; every form
carries the session's CSRF token (the sign-in form a double-submit cookie's).
"""

import base64
import secrets
from collections.abc import Callable, Coroutine
from datetime import date, timedelta
from functools import partial
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote, urlencode
from uuid import UUID

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import AfterValidator, ValidationError
from starlette.datastructures import FormData, UploadFile
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from subledger.analytics import service as analytics_service
from subledger.apps import service as apps_service
from subledger.catalog import service as catalog_service
from subledger.catalog.schemas import AccessLevelIn, ProductIn
from subledger.core.errors import ApiError, from_validation_errors
from subledger.core.fields import text
from subledger.core.http import csv_response, runtime_of
from subledger.core.profile_ref import ProfileRef
from subledger.core.runtime import Runtime
from subledger.currencies import rules as currencies_rules
from subledger.currencies import service as currencies_service
from subledger.dashboard import customers, service
from subledger.events import rules as events_rules
from subledger.events import service as events_service
from subledger.events.schemas import EndpointChange, EndpointIn, TestEventIn
from subledger.purchases import service as purchases_service
from subledger.purchases.schemas import GrantIn, RevokeIn
from subledger.stores import connections
from subledger.stores import service as stores_service
from subledger.stores.google import service as google_service
from subledger.stores.rules import CONNECTED_STORES
from subledger.stores.schemas import (
    AppStoreConnectionIn,
    PaddleConnectionIn,
    PlayStoreConnectionIn,
    StripeConnectionIn,
)

HERE = Path(__file__).parent
SESSION_COOKIE = "subledger_session"
LOGIN_CSRF_COOKIE = "subledger_login_csrf"
PREFIX = "/dashboard"


class AuditedRoute(APIRoute):
    """A dashboard route whose forms are recorded: every one ``_form_app`` admitted (which sets
    ``request.state.audited``), with the answer it got, a refusal too."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        action = f"POST {self.path.removeprefix(PREFIX)}"

        async def audited(request: Request) -> Response:
            try:
                response = await handler(request)
            except ApiError as error:
                await _record(request, action, error.status)
                raise
            await _record(request, action, response.status_code)
            return response

        return audited


async def _record(request: Request, action: str, status: int) -> None:
    audited: tuple[service.Session, UUID] | None = getattr(request.state, "audited", None)
    if audited is None:
        return
    session, app_id = audited
    fields = (await request.form()).items()
    form = {name: value.filename or "" if isinstance(value, UploadFile) else value for name, value in fields}
    runtime = runtime_of(request)
    await runtime.write(service.record_action, runtime, session, app_id, action, request.url.path, status, form)


router = APIRouter(prefix=PREFIX, include_in_schema=False, route_class=AuditedRoute)
templates = Jinja2Templates(directory=HERE / "templates")
# "2025-01-10T00:00:00.000000+0000" (the API's format) as "2025-01-10 00:00" (UTC).
templates.env.globals["stores"] = CONNECTED_STORES  # the store pickers' choices
templates.env.filters["moment"] = lambda value: value[:16].replace("T", " ") if value else "–"
# Money as dollars and cents, a ratio as a percentage; "–" for a figure there is none of.
templates.env.filters["usd"] = lambda value: "–" if value is None else f"${value:,.2f}"
templates.env.filters["share"] = lambda value: "–" if value is None else f"{value * 100:.1f}%"
static = StaticFiles(directory=HERE / "static")


# The dashboard's pages load nothing but its own stylesheet (charts are SVG drawn on the server,
# no script), may not be framed, and send no Referer elsewhere.
SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
        b"frame-ancestors 'none'; base-uri 'none'",
    ),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"x-content-type-options", b"nosniff"),
]


class SecurityHeaders:
    """ASGI middleware: ``SECURITY_HEADERS`` on every answer under ``/dashboard``."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PREFIX):
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *SECURITY_HEADERS]}
            await send(message)

        await self.app(scope, receive, with_headers)


class SignInRequired(Exception):
    """Raised by a page when nobody is signed in: answered with a redirect to the sign-in page."""


async def _session(request: Request) -> service.Session:
    runtime = runtime_of(request)
    found = await runtime.read(service.session, runtime, request.cookies.get(SESSION_COOKIE))
    if found is None:
        raise SignInRequired
    return found


def _check_csrf(session: service.Session, sent: str | None) -> None:
    if not service.csrf_ok(session.csrf_token, sent):
        raise ApiError.one(403, "csrf_failed", None, "The form's CSRF token is missing or wrong; reload the page.")


async def _app(request: Request, app_id: str) -> dict[str, Any]:
    """The app a page is about: its id and name; 404 when there is no such app."""
    runtime = runtime_of(request)
    try:
        wanted = UUID(app_id)
    except ValueError:
        wanted = None
    name = await runtime.read(apps_service.app_name, runtime.db, wanted) if wanted else None
    if name is None:
        raise ApiError.one(404, "not_found", None, "No such app.")
    return {"app_id": str(wanted), "name": name}


async def _form_app(request: Request, app_id: str, csrf: str) -> dict[str, Any]:
    """The app a form posts to, once the signed-in operator's CSRF token is checked and their role
    found to allow changes (403 otherwise); the form is recorded in the app's trail."""
    session = await _session(request)
    _check_csrf(session, csrf)
    app = await _app(request, app_id)
    request.state.audited = (session, UUID(app["app_id"]))
    if not session.may_change:
        raise ApiError.one(
            403, "forbidden", None, f"Your role ({session.role}) may see every page and change nothing: ask an owner."
        )
    return app


def _page(request: Request, template: str, session: service.Session, **context: Any) -> HTMLResponse:
    return templates.TemplateResponse(request, template, {"session": session, **context})


def sign_in_redirect(request: Request, _exc: Exception) -> Response:
    return RedirectResponse(f"{PREFIX}/login?next={quote(request.url.path)}", status_code=303)


@router.get("/login")
async def login_form(request: Request, next: str = "/dashboard/", failed: bool = False) -> Response:
    token = secrets.token_urlsafe(32)
    response = templates.TemplateResponse(
        request, "login.html", {"session": None, "csrf": token, "next": _local(next), "failed": failed}
    )
    secure = request.url.scheme == "https"
    response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", secure=secure, path=PREFIX)
    return response


def _local(target: str) -> str:
    """Only a dashboard path is a place to go after signing in (no open redirect)."""
    return target if target.startswith(PREFIX + "/") and "//" not in target and "\\" not in target else PREFIX + "/"


@router.post("/login")
async def login(
    request: Request,
    email: Annotated[str, Form(max_length=255), AfterValidator(text)],  # looked up: no NUL
    password: Annotated[str, Form(max_length=1024)],
    csrf: Annotated[str, Form(max_length=128)] = "",
    next: Annotated[str, Form(max_length=1024)] = "/dashboard/",
) -> Response:
    expected = request.cookies.get(LOGIN_CSRF_COOKIE) or ""
    if not expected or not service.csrf_ok(expected, csrf):
        raise ApiError.one(403, "csrf_failed", None, "The sign-in form expired; reload the page.")
    runtime = runtime_of(request)
    address = request.client.host if request.client else ""
    # A check is reserved first: past the ones a process runs at once, an attempt costs nothing,
    # not even a write to the limits' buckets.
    if not service.reserve_check():
        raise ApiError.one(429, "rate_limited", None, "Too many sign-ins at once; try again.").retry_after(1)
    try:
        operator = await runtime.write(service.take_attempt, runtime, email, address)
    except service.TooManySignIns as refused:
        service.release_check()
        minutes = max(1, round(refused.seconds / 60))
        message = f"Too many failed sign-ins; try again in {minutes} min."
        raise ApiError.one(429, "rate_limited", None, message).retry_after(refused.seconds) from None
    except BaseException:
        service.release_check()
        raise
    # Checked in threads of their own, never the ones requests' database work needs.
    matches = await runtime.isolated("passwords", service.VERIFYING, service.password_matches, operator, password)
    token = await runtime.write(service.open_session, runtime, operator, address) if matches and operator else None
    if token is None:
        return RedirectResponse(f"{PREFIX}/login?failed=1&next={quote(_local(next))}", status_code=303)
    response = RedirectResponse(_local(next), status_code=303)
    secure = request.url.scheme == "https"
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="strict", secure=secure, path=PREFIX)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path=PREFIX)
    return response


@router.post("/logout")
async def logout(request: Request, csrf: Annotated[str, Form(max_length=128)] = "") -> Response:
    session = await _session(request)
    _check_csrf(session, csrf)
    runtime = runtime_of(request)
    await runtime.write(service.sign_out, runtime, request.cookies[SESSION_COOKIE])
    response = RedirectResponse(f"{PREFIX}/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path=PREFIX)
    return response


@router.get("/")
async def apps(request: Request) -> Response:
    session = await _session(request)
    runtime = runtime_of(request)
    found = await runtime.read(apps_service.list_apps, runtime.db, runtime.clock.now())
    if len(found) == 1:
        return RedirectResponse(f"{PREFIX}/apps/{found[0]['app_id']}/", status_code=303)
    return _page(request, "apps.html", session, apps=found)


def _metrics_query(
    period: Literal["day", "week", "month"] = "day",
    start: date | None = None,
    end: date | None = None,
    environment: Literal["Production", "Sandbox", "all"] = "Production",
    store: Annotated[str, Query(max_length=255)] = "",
    country: Annotated[str, Query(max_length=2)] = "",
    product: Annotated[str, Query(max_length=255)] = "",
) -> analytics_service.MetricsQuery:
    """The overview's filters, from its form's fields."""
    return analytics_service.MetricsQuery(
        period=period,
        start=start,
        end=end,
        environment=None if environment == "all" else environment,
        store=store or None,
        country=country.upper() or None,
        product=product or None,
    )


MetricsFilters = Annotated[analytics_service.MetricsQuery, Depends(_metrics_query)]


@router.get("/apps/{app_id}/metrics.csv")
async def metrics_csv(request: Request, app_id: str, query: MetricsFilters) -> Response:
    """The overview's table, as shown, in CSV."""
    await _session(request)
    app = await _app(request, app_id)
    runtime = runtime_of(request)
    result = await runtime.long_read(analytics_service.metrics, runtime, UUID(app["app_id"]), query)
    name = f"metrics-{result['start']}-{result['end']}-by-{query.period}.csv"
    return csv_response(result["data"], ["date", *analytics_service.METRICS], name)


@router.get("/apps/{app_id}/")
async def overview(request: Request, app_id: str, query: MetricsFilters) -> Response:
    session = await _session(request)
    app = await _app(request, app_id)
    runtime = runtime_of(request)
    environment = query.environment or "all"
    try:
        result = await runtime.long_read(service.overview, runtime, UUID(app["app_id"]), query)
    except ApiError as refused:
        if refused.code != "metrics_rebuilding":
            raise
        # Being recomputed (new exchange rates, an upgrade): say so on the page, not in JSON.
        why = refused.messages()
        page = _page(request, "overview.html", session, app=app, result=None, unavailable=why, environment=environment)
        page.status_code = refused.status
        return page
    return _page(request, "overview.html", session, app=app, result=result, environment=environment)


@router.get("/apps/{app_id}/paywalls/")
async def paywalls(request: Request, app_id: str) -> Response:
    session = await _session(request)
    app = await _app(request, app_id)
    runtime = runtime_of(request)
    found = await runtime.long_read(service.paywalls_page, runtime, UUID(app["app_id"]))
    return _page(request, "paywalls.html", session, app=app, **found)


# Graces a rotated key may be given, in hours: none, an hour, a day, a week.
KEY_GRACES = (0, 1, 24, 168)


async def _keys_page(request: Request, session: service.Session, app: dict[str, Any], **context: Any) -> Response:
    runtime = runtime_of(request)
    keys = await runtime.read(apps_service.keys_in_force, runtime.db, UUID(app["app_id"]), runtime.clock.now())
    return _page(request, "keys.html", session, app=app, keys=keys, graces=KEY_GRACES, **context)


@router.get("/apps/{app_id}/keys/")
async def keys(request: Request, app_id: str) -> Response:
    return await _keys_page(request, await _session(request), await _app(request, app_id))


@router.post("/apps/{app_id}/keys/rotate")
async def rotate_key(
    request: Request,
    app_id: str,
    kind: Annotated[Literal["secret", "public"], Form()],
    grace_hours: Annotated[int, Form(ge=0, le=168)] = 0,
    csrf: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    """A new key of the kind, shown on this answer only; the earlier ones work ``grace_hours`` more."""
    app = await _form_app(request, app_id, csrf)
    runtime = runtime_of(request)
    grace = timedelta(hours=grace_hours)
    rotated = await runtime.write(
        apps_service.rotate_key, runtime.db, UUID(app["app_id"]), runtime.clock.now(), grace, kind
    )
    answer = await _keys_page(request, await _session(request), app, new_key=rotated[f"{kind}_api_key"], kind=kind,
                              until=rotated["earlier_keys_work_until"])  # fmt: skip
    answer.headers["cache-control"] = "no-store"  # it holds the new key
    return answer


@router.get("/apps/{app_id}/activity/")
async def activity(request: Request, app_id: str) -> Response:
    session = await _session(request)
    app = await _app(request, app_id)
    runtime = runtime_of(request)
    actions = await runtime.read(service.actions, runtime, UUID(app["app_id"]))
    return _page(request, "activity.html", session, app=app, actions=actions)


@router.get("/apps/{app_id}/profiles/")
async def profiles(
    request: Request,
    app_id: str,
    q: Annotated[str, Query(max_length=255)] = "",
    level: Annotated[str, Query(max_length=255)] = "",
    store: Annotated[str, Query(max_length=255)] = "",
    country: Annotated[str, Query(max_length=2)] = "",
    status: Literal["", "trial", "subscribed", "churned"] = "",
    after: Annotated[str, Query(max_length=100)] = "",
) -> Response:
    """A search by id when ``q`` is given; else the customers list, newest first, filtered."""
    session = await _session(request)
    app = await _app(request, app_id)
    runtime = runtime_of(request)
    app_uuid = UUID(app["app_id"])
    if q:
        found = await runtime.read(service.search_profiles, runtime, app_uuid, q)
        if len(found) == 1:
            return RedirectResponse(f"{PREFIX}/apps/{app['app_id']}/profiles/{found[0]['id']}/", status_code=303)
        return _page(
            request, "profiles.html", session, app=app, q=q, found=found, listed=None, limit=service.CUSTOMERS_PAGE
        )
    filters = customers.Filters(level=level, store=store, country=country, status=status)
    listed = await runtime.long_read(service.customers_page, runtime, app_uuid, filters, after)
    levels = await runtime.read(catalog_service.list_access_levels, runtime, app_uuid)
    shown = {"level": level, "store": store, "country": country, "status": status}
    more = urlencode({**shown, "after": listed["next"]}) if listed["next"] else None
    return _page(request, "profiles.html", session, app=app, q="", found=[], listed=listed, filters=shown,
                 levels=levels, statuses=customers.STATUSES, more=more, first_page=not after)  # fmt: skip


@router.get("/apps/{app_id}/profiles/{profile_id}/")
async def profile(
    request: Request,
    app_id: str,
    profile_id: UUID,
    error: Annotated[str, Query(max_length=1000)] = "",
    notice: Annotated[str, Query(max_length=200)] = "",
) -> Response:
    session = await _session(request)
    app = await _app(request, app_id)
    runtime = runtime_of(request)
    page = await runtime.read(service.profile_page, runtime, UUID(app["app_id"]), profile_id)
    levels = await runtime.read(catalog_service.list_access_levels, runtime, UUID(app["app_id"]))
    return _page(request, "profile.html", session, app=app, levels=levels, error=error, notice=notice, **page)


async def _profile_change(
    request: Request,
    app: dict[str, Any],
    profile_id: UUID,
    change: Callable[..., Any],
    schema: type[GrantIn] | type[RevokeIn],
    fields: dict[str, Any],
    done: str,
) -> Response:
    """A grant or a revocation made from a profile's page: the API's own body and use case, with
    their rules and events; back to the page with what was done, or why it was refused."""
    runtime = runtime_of(request)
    page = f"profiles/{profile_id}"
    try:
        body = schema.model_validate(fields)
        await runtime.write(change, runtime, UUID(app["app_id"]), ProfileRef(profile_id=profile_id), body)
    except (ApiError, ValidationError) as refused:
        return _back_to(page, app, _refusal(refused))
    return _back_to(page, app, notice=done)


@router.post("/apps/{app_id}/profiles/{profile_id}/grant")
async def grant_access_level(
    request: Request,
    app_id: str,
    profile_id: UUID,
    access_level_id: Annotated[str, Form(max_length=255)],
    expires_at: Annotated[str, Form(max_length=64)] = "",
    csrf: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    """Grant an access level, until a moment (UTC) or for ever, as the API's grant does."""
    app = await _form_app(request, app_id, csrf)
    fields = {"access_level_id": access_level_id, "expires_at": f"{expires_at}:00Z" if expires_at else None}
    done = f"Granted {access_level_id}" + (f" until {expires_at.replace('T', ' ')} UTC." if expires_at else ".")
    grant = purchases_service.grant_access_level
    return await _profile_change(request, app, profile_id, grant, GrantIn, fields, done)


@router.post("/apps/{app_id}/profiles/{profile_id}/refund")
async def refund_access_level(
    request: Request,
    app_id: str,
    profile_id: UUID,
    access_level_id: Annotated[str, Form(max_length=255)],
    csrf: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    """End an access level now and record the transaction it stands on as refunded, as the legacy
    API's revoke with ``is_refund`` does (the store's own refund is the store's to make)."""
    app = await _form_app(request, app_id, csrf)
    refund = partial(purchases_service.revoke_access_level, refund=True)
    fields = {"access_level_id": access_level_id}
    done = f"Revoked {access_level_id} and recorded its transaction as refunded."
    return await _profile_change(request, app, profile_id, refund, RevokeIn, fields, done)


@router.post("/apps/{app_id}/profiles/{profile_id}/revoke")
async def revoke_access_level(
    request: Request,
    app_id: str,
    profile_id: UUID,
    access_level_id: Annotated[str, Form(max_length=255)],
    csrf: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    """End an access level now, as the API's revoke does."""
    app = await _form_app(request, app_id, csrf)
    revoke = purchases_service.revoke_access_level
    fields = {"access_level_id": access_level_id}
    return await _profile_change(request, app, profile_id, revoke, RevokeIn, fields, f"Revoked {access_level_id}.")


@router.get("/apps/{app_id}/deliveries/")
async def deliveries(
    request: Request,
    app_id: str,
    status: Literal["pending", "delivered", "refused", "dead"] | None = None,
    notice: Annotated[str, Query(max_length=2048)] = "",
) -> Response:
    session = await _session(request)
    app = await _app(request, app_id)
    runtime = runtime_of(request)
    found = await runtime.read(events_service.list_deliveries, runtime, UUID(app["app_id"]), status, None, 200)
    return _page(request, "deliveries.html", session, app=app, deliveries=found, status=status, notice=notice)


@router.post("/apps/{app_id}/deliveries/replay")
async def replay_deliveries(request: Request, app_id: str, csrf: Annotated[str, Form(max_length=128)] = "") -> Response:
    app = await _form_app(request, app_id, csrf)
    runtime = runtime_of(request)
    count = await runtime.write(events_service.replay, runtime, UUID(app["app_id"]), None)
    target = f"{PREFIX}/apps/{app['app_id']}/deliveries/?notice={quote(f'{count} deliveries queued again.')}"
    return RedirectResponse(target, status_code=303)


WEBHOOK_OPTIONS = [
    ("send_trial_price", "Send trial price"),
    ("exclude_historical_events", "Exclude historical events"),
    ("send_user_attributes", "Send user attributes"),
    ("send_attribution", "Send attribution"),
    ("send_play_store_purchase_token", "Send Play Store purchase token"),
]


async def _webhooks_page(request: Request, app: dict[str, Any], session: service.Session, **context: Any) -> Response:
    runtime = runtime_of(request)
    endpoints = await runtime.read(events_service.list_endpoints, runtime, UUID(app["app_id"]))
    return _page(
        request,
        "webhooks.html",
        session,
        app=app,
        endpoints=endpoints,
        event_types=events_rules.EVENT_TYPES,
        default_types=events_rules.DEFAULT_TYPES,
        options=WEBHOOK_OPTIONS,
        default_options={name for name, field in EndpointIn.model_fields.items() if field.default is True},
        **context,
    )


@router.get("/apps/{app_id}/webhooks/")
async def webhooks(
    request: Request,
    app_id: str,
    error: Annotated[str, Query(max_length=2048)] = "",
    notice: Annotated[str, Query(max_length=2048)] = "",
) -> Response:
    session = await _session(request)
    return await _webhooks_page(request, await _app(request, app_id), session, error=error, notice=notice)


def _refusal(error: ApiError | ValidationError) -> ApiError:
    """What a refused form shows: the API's own error, or the one the API gives a body that does not fit."""
    return error if isinstance(error, ApiError) else from_validation_errors(error.errors())


def _back_to(page: str, app: dict[str, Any], error: ApiError | None = None, notice: str = "") -> Response:
    """Back to one of the app's pages after a form, with what went wrong or what was done."""
    target = f"{PREFIX}/apps/{app['app_id']}/{page}/"
    if error is not None:
        target += f"?error={quote(error.messages())}"
    elif notice:
        target += f"?notice={quote(notice)}"
    return RedirectResponse(target, status_code=303)


def _back_to_webhooks(app: dict[str, Any], error: ApiError | None = None, notice: str = "") -> Response:
    return _back_to("webhooks", app, error, notice)


async def _endpoint_form(request: Request, app_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The app an endpoint form posts to (its CSRF token checked) and the form's fields in the
    admin API's shape (every option given: an unchecked box is false)."""
    form = await request.form()
    app = await _form_app(request, app_id, str(form.get("csrf", "")))
    names = {}
    for line in str(form.get("event_names", "")).splitlines():
        if line.strip():
            event_type, _, name = line.strip().partition("=")
            names[event_type.strip()] = name.strip()
    fields = {
        "url": str(form.get("url", "")).strip() or None,
        "sandbox_url": str(form.get("sandbox_url", "")).strip() or None,
        "event_types": [str(value) for value in form.getlist("event_types")] or None,
        "event_names": names or None,
        **{option: form.get(option) == "true" for option, _label in WEBHOOK_OPTIONS},
    }
    for name in ("authorization", "sandbox_authorization"):
        if value := str(form.get(name, "")).strip():
            fields[name] = value
    if form.get("clear_authorizations") == "true":
        fields.update(authorization=None, sandbox_authorization=None)
    return app, fields


@router.post("/apps/{app_id}/webhooks/")
async def add_webhook(request: Request, app_id: str) -> Response:
    app, fields = await _endpoint_form(request, app_id)
    try:
        created = await events_service.register_endpoint(
            runtime_of(request), UUID(app["app_id"]), EndpointIn.model_validate(fields)
        )
    except (ApiError, ValidationError) as refused:
        return _back_to_webhooks(app, _refusal(refused))
    # Shown on the answer itself, never in a URL: the secret is shown this once.
    session = await _session(request)
    return await _webhooks_page(request, app, session, created_secret=created["signing_secret"])


@router.post("/apps/{app_id}/webhooks/{endpoint_id}/")
async def change_webhook(request: Request, app_id: str, endpoint_id: UUID) -> Response:
    app, fields = await _endpoint_form(request, app_id)
    try:
        change = EndpointChange.model_validate(fields)
        await events_service.update_endpoint(runtime_of(request), UUID(app["app_id"]), endpoint_id, change)
    except (ApiError, ValidationError) as refused:
        return _back_to_webhooks(app, _refusal(refused))
    return _back_to_webhooks(app, notice="Saved.")


@router.post("/apps/{app_id}/webhooks/{endpoint_id}/test")
async def test_webhook(
    request: Request,
    app_id: str,
    endpoint_id: UUID,
    target: Annotated[Literal["production", "sandbox"], Form()] = "production",
    event_type: Annotated[str, Form(max_length=64)] = "subscription_started",
    csrf: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    app = await _form_app(request, app_id, csrf)
    body = TestEventIn(target=target, event_type=event_type)
    try:
        sent = await events_service.send_test_event(runtime_of(request), UUID(app["app_id"]), endpoint_id, body)
    except ApiError as refused:
        return _back_to_webhooks(app, refused)
    answer = f"answered {sent['status_code']}" if sent["status_code"] is not None else sent["error"]
    return _back_to_webhooks(app, notice=f"Test {event_type} sent to the {target} URL: {answer}.")


@router.post("/apps/{app_id}/webhooks/{endpoint_id}/delete")
async def delete_webhook(
    request: Request, app_id: str, endpoint_id: UUID, csrf: Annotated[str, Form(max_length=128)] = ""
) -> Response:
    app = await _form_app(request, app_id, csrf)
    runtime = runtime_of(request)
    try:
        await runtime.write(events_service.delete_endpoint, runtime, UUID(app["app_id"]), endpoint_id)
    except ApiError as refused:
        return _back_to_webhooks(app, refused)
    return _back_to_webhooks(app, notice="Removed.")


# The product form's fields, kept in the URL after an error so that the form shows what was typed.
PRODUCT_FIELDS = ("store", "store_product_id", "store_base_plan_id", "access_level_id", "period", "is_consumable")


@router.get("/apps/{app_id}/catalog/")
async def catalog(request: Request, app_id: str, error: Annotated[str, Query(max_length=2048)] = "") -> Response:
    session = await _session(request)
    app = await _app(request, app_id)
    runtime = runtime_of(request)
    app_uuid = UUID(app["app_id"])
    levels = await runtime.read(catalog_service.list_access_levels, runtime, app_uuid)
    found = await runtime.read(catalog_service.list_products, runtime, app_uuid)
    grants = await runtime.read(catalog_service.currency_grants, runtime, app_uuid)
    origins = await runtime.read(apps_service.web_origins, runtime.db, app_uuid)
    currencies = await runtime.read(currencies_service.settings, runtime, app_uuid)
    return _page(
        request,
        "catalog.html",
        session,
        app=app,
        levels=levels,
        products=found,
        grants=grants,
        currencies=currencies,
        origins=origins,
        error=error,
        typed={name: request.query_params.get(name, "")[:255] for name in PRODUCT_FIELDS},
    )


def _back_to_catalog(
    app: dict[str, Any], error: ApiError | None = None, typed: dict[str, str] | None = None
) -> Response:
    answer = _back_to("catalog", app, error)
    if error is not None and typed:
        answer.headers["location"] += "&" + urlencode({name: value for name, value in typed.items() if value})
    return answer


async def _catalog_change(
    request: Request,
    app: dict[str, Any],
    change: Callable[..., Any],
    *args: Any,
    typed: dict[str, str] | None = None,
) -> Response:
    """Make a change to the catalog and go back to it; on an error, with what went wrong and what
    the form had (``typed``)."""
    runtime = runtime_of(request)
    try:
        await runtime.write(change, runtime, UUID(app["app_id"]), *args)
    except (ApiError, ValidationError) as refused:
        return _back_to_catalog(app, _refusal(refused), typed)
    except currencies_rules.CurrencyError as refused:
        return _back_to_catalog(app, ApiError.one(400, "base_error", None, str(refused)), typed)
    return _back_to_catalog(app)


@router.post("/apps/{app_id}/catalog/access-levels/")
async def add_access_level(
    request: Request,
    app_id: str,
    access_level_id: Annotated[str, Form(max_length=255)],
    csrf: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    app = await _form_app(request, app_id, csrf)

    def create(runtime: Runtime, app_uuid: UUID) -> dict[str, Any]:
        return catalog_service.create_access_level(runtime, app_uuid, AccessLevelIn(access_level_id=access_level_id))

    return await _catalog_change(request, app, create)


@router.post("/apps/{app_id}/catalog/products/")
async def add_product(
    request: Request,
    app_id: str,
    store: Annotated[str, Form(max_length=255)],
    store_product_id: Annotated[str, Form(max_length=255)],
    period: Annotated[str, Form(max_length=32)],
    access_level_id: Annotated[str, Form(max_length=255)] = "",
    store_base_plan_id: Annotated[str, Form(max_length=255)] = "",
    is_consumable: Annotated[bool, Form()] = False,
    csrf: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    app = await _form_app(request, app_id, csrf)

    def create(runtime: Runtime, app_uuid: UUID) -> dict[str, Any]:
        body = ProductIn(
            store=store,
            store_product_id=store_product_id,
            period=period,
            access_level_id=access_level_id or None,
            store_base_plan_id=store_base_plan_id or None,
            is_consumable=is_consumable,
        )
        return purchases_service.add_product(runtime, app_uuid, body)

    typed = {
        "store": store,
        "store_product_id": store_product_id,
        "store_base_plan_id": store_base_plan_id,
        "access_level_id": access_level_id,
        "period": period,
        "is_consumable": "true" if is_consumable else "",
    }
    return await _catalog_change(request, app, create, typed=typed)


@router.post("/apps/{app_id}/catalog/access-levels/{access_level_id}/delete")
async def delete_access_level(
    request: Request, app_id: str, access_level_id: str, csrf: Annotated[str, Form(max_length=128)] = ""
) -> Response:
    """Remove an access level (refused for the default one, and while a product or a grant uses it)."""
    app = await _form_app(request, app_id, csrf)
    return await _catalog_change(request, app, catalog_service.delete_access_level, access_level_id)


@router.post("/apps/{app_id}/catalog/products/{product_id}/delete")
async def delete_product(
    request: Request, app_id: str, product_id: UUID, csrf: Annotated[str, Form(max_length=128)] = ""
) -> Response:
    app = await _form_app(request, app_id, csrf)
    return await _catalog_change(request, app, purchases_service.remove_product, product_id)


@router.post("/apps/{app_id}/catalog/currencies/switch")
async def switch_currencies(
    request: Request, app_id: str, enabled: Annotated[bool, Form()], csrf: Annotated[str, Form(max_length=128)] = ""
) -> Response:
    """Turn the API's virtual currency endpoints on or off."""
    app = await _form_app(request, app_id, csrf)
    return await _catalog_change(request, app, currencies_service.enable, enabled)


@router.post("/apps/{app_id}/catalog/currencies/")
async def add_currency(
    request: Request,
    app_id: str,
    code: Annotated[str, Form(max_length=30)],
    name: Annotated[str, Form(min_length=1, max_length=255)],
    csrf: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    app = await _form_app(request, app_id, csrf)
    return await _catalog_change(request, app, currencies_service.add_currency, code, name)


@router.post("/apps/{app_id}/catalog/currencies/{code}/delete")
async def delete_currency(
    request: Request, app_id: str, code: str, csrf: Annotated[str, Form(max_length=128)] = ""
) -> Response:
    app = await _form_app(request, app_id, csrf)
    return await _catalog_change(request, app, currencies_service.remove_currency, code)


@router.post("/apps/{app_id}/catalog/products/{product_id}/credits")
async def set_product_credits(
    request: Request,
    app_id: str,
    product_id: UUID,
    credits: Annotated[str, Form(max_length=4096)] = "",
    csrf: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    """What buying the product credits, written ``COINS=100 GEMS=5`` (empty: nothing)."""
    app = await _form_app(request, app_id, csrf)
    try:
        grants = currencies_rules.parsed_grants(credits.split())
    except currencies_rules.CurrencyError as refused:
        return _back_to_catalog(app, ApiError.one(400, "base_error", "credits", str(refused)))
    return await _catalog_change(request, app, currencies_service.set_product_grants, product_id, grants)


@router.post("/apps/{app_id}/catalog/web-origins/")
async def set_web_origins(
    request: Request,
    app_id: str,
    origins: Annotated[str, Form(max_length=64 * 1024)] = "",
    csrf: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    """Replace the origins whose pages may call the app's Web API: one per line."""
    app = await _form_app(request, app_id, csrf)
    runtime = runtime_of(request)
    try:
        await runtime.write(apps_service.set_web_origins, runtime.db, UUID(app["app_id"]), origins.split())
    except ValueError as invalid:
        return _back_to_catalog(app, ApiError.one(400, "base_error", "origins", str(invalid)))
    return _back_to_catalog(app)


# Stores ---------------------------------------------------------------------------

# Each store the dashboard connects: its name, its connection schema, and its form's secret fields
# (a secret or key file left blank keeps the one set).
STORE_FORMS: dict[str, tuple[str, type[connections.ConnectionIn], tuple[str, ...]]] = {
    "app_store": ("App Store", AppStoreConnectionIn, ("private_key",)),
    "play_store": ("Google Play", PlayStoreConnectionIn, ("service_account",)),
    "stripe": (
        "Stripe",
        StripeConnectionIn,
        ("secret_key", "webhook_secret", "test_secret_key", "test_webhook_secret"),
    ),
    "paddle": ("Paddle", PaddleConnectionIn, ("api_key", "notification_secret")),
}


@router.get("/apps/{app_id}/stores/")
async def stores_page(
    request: Request,
    app_id: str,
    error: Annotated[str, Query(max_length=2048)] = "",
    notice: Annotated[str, Query(max_length=2048)] = "",
) -> Response:
    session = await _session(request)
    app = await _app(request, app_id)
    runtime = runtime_of(request)
    app_uuid = UUID(app["app_id"])
    connected = await runtime.read(stores_service.connections, runtime, app_uuid)
    refused = await runtime.read(stores_service.refused_totals, runtime, app_uuid)
    by_store = {connection["store"]: connection for connection in connected}
    activity = await runtime.read(service.store_activity, runtime, app_uuid, list(by_store))
    # The path Pub/Sub pushes to holds a secret token: shown to owners only.
    push_path = None
    if "play_store" in by_store and session.may_change:
        push_path = await runtime.read(google_service.push_path, runtime, app_uuid)
    return _page(
        request, "stores.html", session, app=app, connections=connected, by_store=by_store, refused=refused,
        activity=activity, push_path=push_path, error=error, notice=notice,
    )  # fmt: skip


@router.post("/apps/{app_id}/stores/{store}/")
async def connect_store(
    request: Request, app_id: str, store: Literal["app_store", "play_store", "stripe", "paddle"]
) -> Response:
    """Connect a store: a secret left blank stays as it is, an unticked box is off, and the other
    settings are taken as shown (the form shows them filled in; Play's push fields cleared, off)."""
    form = await request.form()
    app = await _form_app(request, app_id, str(form.get("csrf", "")))
    name, schema, secret_fields = STORE_FORMS[store]
    fields: dict[str, object] = {field: _typed(form, field) or None for field in secret_fields}
    if store == "app_store":
        fields.update({field: _typed(form, field) or None for field in ("bundle_id", "issuer_id", "key_id")})
        apple_id = _typed(form, "app_apple_id")
        fields["app_apple_id"] = int(apple_id) if apple_id.isdigit() else apple_id or None
        files = [await upload.read() for upload in form.getlist("root_certificates") if isinstance(upload, UploadFile)]
        fields["root_certificates"] = [base64.b64encode(file).decode() for file in files if file] or None
    elif store == "play_store":
        fields.update(
            package_name=_typed(form, "package_name") or None,
            push_service_account=_typed(form, "push_service_account"),
            push_audience=_typed(form, "push_audience"),
        )
    elif store == "stripe":
        fields["profile_source"] = str(form.get("profile_source", "metadata"))
    else:
        fields.update(sandbox=form.get("sandbox") == "true", match_email=form.get("match_email") == "true")
    runtime = runtime_of(request)
    try:
        connect = connections.connect(schema.model_validate(fields))
        await runtime.write(connect, runtime, UUID(app["app_id"]))
    except (ApiError, ValidationError) as refused:
        return _back_to("stores", app, _refusal(refused))
    return _back_to("stores", app, notice=f"{name} saved.")


def _typed(form: FormData, field: str) -> str:
    """A text field as typed, without the spaces around it ("" when missing)."""
    value = form.get(field, "")
    return value.strip() if isinstance(value, str) else ""


# Journeys -------------------------------------------------------------------------


@router.get("/apps/{app_id}/journeys/")
async def journeys(request: Request, app_id: str, start: date | None = None, end: date | None = None) -> Response:
    """The funnel, retention, LTV and conversions of the users and subscriptions that started in a
    window (the last 90 days by default), as the Export Analytics API computes them."""
    session = await _session(request)
    app = await _app(request, app_id)
    runtime = runtime_of(request)
    end = end or runtime.clock.now().date()
    start = start or end - timedelta(days=89)
    try:
        found = await runtime.long_read(service.journeys, runtime, UUID(app["app_id"]), start, end)
    except (ApiError, ValidationError) as refused:
        error = _refusal(refused).messages()
        return _page(request, "journeys.html", session, app=app, start=start, end=end, found=None, error=error)
    return _page(request, "journeys.html", session, app=app, start=start, end=end, found=found, error="")
