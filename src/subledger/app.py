"""Builds the ASGI application from the features' routers."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from subledger import __version__
from subledger.analytics.endpoints import admin as analytics_admin_router
from subledger.apps.service import Authenticator, OriginPolicy, RateLimits
from subledger.catalog.endpoints import router as catalog_router
from subledger.client_api import endpoints as client_api
from subledger.config import Settings
from subledger.core.addressing import ApiKeyAuth
from subledger.core.http import DatabaseUnavailable, RequestShape, install_error_handlers, redact_access_log
from subledger.core.idempotency import Idempotency
from subledger.core.protocol import settle_collector
from subledger.core.runtime import Runtime
from subledger.core.tables import client_api_rate_buckets, currency_rate_buckets
from subledger.currencies import endpoints as currencies
from subledger.dashboard import endpoints as dashboard
from subledger.events.endpoints import router as events_router
from subledger.health import router as health_router
from subledger.legacy.endpoints import router as legacy_router
from subledger.monitoring import NoteRoute, RequestMetrics
from subledger.monitoring import router as monitoring_router
from subledger.paywalls.endpoints import admin as paywalls_admin_router
from subledger.paywalls.endpoints import router as paywalls_router
from subledger.profiles.endpoints import router as profiles_router
from subledger.purchases.endpoints import admin as products_admin_router
from subledger.purchases.endpoints import router as purchases_router
from subledger.refund_saver import endpoints as refund_saver
from subledger.stores.apple import endpoints as apple_endpoints
from subledger.stores.endpoints import admin as stores_admin_router
from subledger.stores.google import endpoints as google_endpoints
from subledger.stores.paddle import endpoints as paddle_endpoints
from subledger.stores.stripe.endpoints import router as stripe_router
from subledger.web_api import endpoints as web_api
from subledger.web_api.access import WebApiAccess
from subledger.worker import start_in_background


def create_app(runtime: Runtime | None = None) -> FastAPI:
    """The subledger API. Without a runtime, one is built from the environment."""
    runtime = runtime or Runtime.from_settings(Settings())
    redact_access_log()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        settle_collector()
        delivering = start_in_background(runtime) if runtime.settings.delivers_in_serve else None
        yield
        if delivering is not None:
            thread, stop = delivering
            stop.set()
            thread.join(timeout=30)
        if runtime.db.loop_reads is not None:
            await runtime.db.loop_reads.close()

    app = FastAPI(
        lifespan=lifespan,
        title="subledger",
        version=__version__,
        description="Self-hosted subscriptions backend speaking Adapty's server-side API v2.",
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.runtime = runtime
    app.state.authenticator = Authenticator(runtime.db, runtime.clock, runtime.settings.api_key_cache_seconds)
    app.state.rate_limits = RateLimits(runtime.db, runtime.clock)
    # The contract's limit of virtual currency transactions allows a minute's worth at once.
    app.state.currency_rate_limits = RateLimits(runtime.db, runtime.clock, currency_rate_buckets, burst_seconds=60)
    app.state.client_api_rate_limits = RateLimits(runtime.db, runtime.clock, client_api_rate_buckets, burst_seconds=1)
    app.state.web_origins = OriginPolicy(runtime.db, runtime.clock, runtime.settings.api_key_cache_seconds)
    install_error_handlers(app)
    app.include_router(profiles_router)
    app.include_router(purchases_router)
    app.include_router(refund_saver.router)
    app.include_router(currencies.router)
    app.include_router(currencies.admin)
    app.include_router(refund_saver.admin)
    app.include_router(catalog_router)
    app.include_router(products_admin_router)
    app.include_router(events_router)
    app.include_router(legacy_router)
    app.include_router(paywalls_router)
    app.include_router(paywalls_admin_router)
    app.include_router(web_api.router)
    app.include_router(web_api.admin)
    app.include_router(apple_endpoints.router)
    app.include_router(apple_endpoints.api)
    app.include_router(google_endpoints.router)
    app.include_router(google_endpoints.api)
    app.include_router(paddle_endpoints.api)
    app.include_router(paddle_endpoints.router)
    app.include_router(stripe_router)
    app.include_router(stores_admin_router)
    app.include_router(analytics_admin_router)
    app.include_router(client_api.router)
    app.include_router(dashboard.router)
    app.include_router(health_router)
    app.include_router(monitoring_router)
    app.mount("/dashboard/static", dashboard.static, name="dashboard-static")
    app.add_exception_handler(dashboard.SignInRequired, dashboard.sign_in_redirect)
    app.add_middleware(NoteRoute)  # the first added runs innermost
    app.add_middleware(Idempotency)
    app.add_middleware(ApiKeyAuth)
    settings = runtime.settings
    app.add_middleware(
        WebApiAccess, per_key=settings.web_api_rate_per_key, per_address=settings.web_api_rate_per_address
    )
    app.add_middleware(
        RequestShape, max_body_bytes=settings.max_body_bytes, web_api_max_body_bytes=settings.web_api_max_body_bytes
    )
    app.add_middleware(dashboard.SecurityHeaders)
    app.add_middleware(RequestMetrics)
    app.add_middleware(DatabaseUnavailable)  # the last added runs outermost
    return app
