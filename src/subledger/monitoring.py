"""``GET /metrics``: the server's figures in Prometheus's text format, for the operator's monitoring.

Every HTTP request is counted and timed by method, route (its path template, ``(none)``
for one refused before routing or matching none) and status. Each scrape adds the webhook
deliveries waiting and dead-lettered, read from the database. With several server
processes, each writes its figures to files in ``PROMETHEUS_MULTIPROC_DIR`` (``serve``
makes one) and a scrape, whichever process answers it, adds them up.

No API key, like ``/health``: the figures name no app, profile or secret.
"""

import logging
import os
import time
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy.exc import SQLAlchemyError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from subledger.core.http import runtime_of
from subledger.events import service as events_service

log = logging.getLogger("subledger")
NO_ROUTE = "(none)"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_ROUTE = "subledger.route"  # where NoteRoute leaves the route for RequestMetrics, in the request's state

REQUESTS = Counter("subledger_http_requests", "HTTP requests answered", ["method", "route", "status"])
DURATION = Histogram(
    "subledger_http_request_duration_seconds",
    "Time from a request's arrival to the end of its answer",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)

# (method, route, status) -> its counter and histogram: labels() costs more than counting.
_SERIES: dict[tuple[str, str, str], tuple[Counter, Histogram]] = {}

router = APIRouter()


class RequestMetrics:
    """ASGI middleware, outermost: counts and times every request, the ones the other
    middleware refuses (401, 413, 429) included."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status = None
        state = scope.setdefault("state", {})  # shared with the copies of the scope made further in

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except BaseException:
            status = status or 500  # what the server answers for an application that failed
            raise
        finally:
            method = scope["method"] if scope["method"] in _METHODS else "other"  # a client may send any
            # No status: the client went away before the answer.
            key = (method, state.get(_ROUTE, NO_ROUTE), str(status) if status else "(none)")
            if (series := _SERIES.get(key)) is None:
                series = _SERIES[key] = (REQUESTS.labels(*key), DURATION.labels(*key[:2]))
            series[0].inc()
            series[1].observe(time.perf_counter() - started)


class NoteRoute:
    """ASGI middleware, innermost: tells ``RequestMetrics`` which route answered (the router
    names it in the scope it is given, which the middleware outside it do not see)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        finally:
            if (route := scope.get("route")) is not None:
                scope.setdefault("state", {})[_ROUTE] = route.path


class _Backlog:
    """The webhook delivery backlog as Prometheus gauges, from one reading."""

    def __init__(self, backlog: dict[str, Any]):
        self.backlog = backlog

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily(
            "subledger_webhook_deliveries_pending", "Deliveries waiting to be sent", self.backlog["pending"]
        )
        yield GaugeMetricFamily(
            "subledger_webhook_deliveries_refused",
            "Deliveries their receivers refused (3xx, 400-404), until replayed",
            self.backlog["refused"],
        )
        yield GaugeMetricFamily(
            "subledger_webhook_deliveries_dead", "Deliveries dead-lettered, until replayed", self.backlog["dead"]
        )
        yield GaugeMetricFamily(
            "subledger_webhook_deliveries_overdue_seconds",
            "How long the most overdue delivery has been due (workers falling behind, or none running)",
            self.backlog["overdue_seconds"],
        )


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    runtime = runtime_of(request)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        requests = CollectorRegistry()
        MultiProcessCollector(requests)  # type: ignore[no-untyped-call]
    else:
        requests = REGISTRY
    body = generate_latest(requests)
    try:
        backlog = CollectorRegistry()
        backlog.register(_Backlog(await runtime.read(events_service.backlog, runtime)))
        body += generate_latest(backlog)
    except SQLAlchemyError:  # the request figures are still worth having; /health tells the rest
        log.exception("metrics: the database does not answer")
    return Response(body, media_type=CONTENT_TYPE_LATEST)
