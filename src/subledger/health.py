"""``GET /health``: whether this server can answer, for load balancers and orchestrators.

No API key: a probe has none, and the answer names nothing but versions.
"""

import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

from subledger import __version__
from subledger.core.http import runtime_of

log = logging.getLogger("subledger")
router = APIRouter(tags=["health"])


@router.get("/health", summary="200 when the database answers at this version's schema, else 503")
@router.get("/health/", include_in_schema=False)
async def health(request: Request) -> JSONResponse:
    db = runtime_of(request).db
    try:
        current, needed = await runtime_of(request).read(db.schema_revision)
    except SQLAlchemyError:
        # The cause may name hosts and users: it goes to the log, not to an unauthenticated caller.
        log.exception("health check: the database does not answer")
        return _unavailable("the database does not answer")
    if current != needed:
        at = f"at schema revision {current}" if current else "empty"
        return _unavailable(f"the database is {at}, this version needs revision {needed}: run `subledger migrate`")
    return JSONResponse(
        {"status": "ok", "version": __version__, "database": db.engine.dialect.name, "schema_revision": current}
    )


def _unavailable(reason: str) -> JSONResponse:
    return JSONResponse({"status": "unavailable", "version": __version__, "reason": reason}, status_code=503)
