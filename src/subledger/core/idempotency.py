"""``Idempotency-Key`` on every write of the API: a client that retries after a timeout is never
charged twice.

The first request with a key claims it (a row of ``idempotency_keys``). The write transaction
that carries the request's work marks the claim *applied* in that same transaction
(``Database.write`` runs ``mark_applied`` before it ends), so the mark commits exactly when the
work does; once the answer is sent it is kept with the claim. A request repeating the key then:

- with the same method, path, query and body, gets the kept answer, and nothing is done again;
- with another request, is refused (400 ``idempotency_key_invalid``);
- while the first is still at work, gets 409 ``idempotency_in_flight`` with a Retry-After.

A request that wrote nothing (refused, or with nothing to change) gives its key up: repeating it
does what it did. Keys are kept 24 hours, per app and per profile the request names (the
headers ``adapty-customer-user-id`` and ``adapty-profile-id``), as the reference scopes them.
A claim whose request has not finished within ``LEASE`` was lost with its server process: if
its work had not committed, a repeat takes the key over; if it had, the answer is lost, and a
repeat is told so (409 ``idempotency_answer_lost``) rather than done twice.
"""

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import ColumnElement, Connection, delete, select, update
from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from subledger.core import db, sql
from subledger.core.errors import ApiError, bad_request
from subledger.core.http import error_response
from subledger.core.runtime import Runtime
from subledger.core.tables import idempotency_keys

WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
KEEP = timedelta(hours=24)
LEASE = timedelta(seconds=60)
MAX_KEY_LENGTH = 255
PROFILE_HEADERS = ("adapty-customer-user-id", "adapty-profile-id")  # a key is scoped to the profile they name
REPLAYED = "idempotent-replayed"  # a header on a kept answer sent again


def _digest(*parts: bytes) -> str:
    return hashlib.sha256(b"\0".join(parts)).hexdigest()


@dataclass(frozen=True)
class _Claim:
    app_id: UUID
    key_digest: str
    owner: UUID


def _where(app_id: UUID, key_digest: str, *conditions: ColumnElement[bool]) -> list[ColumnElement[bool]]:
    return [idempotency_keys.c.app_id == app_id, idempotency_keys.c.key_digest == key_digest, *conditions]


def _in_flight() -> ApiError:
    return ApiError.one(409, "idempotency_in_flight", None, "A similar request is being processed.").retry_after(1)


def _claim(conn: Connection, app_id: UUID, key_digest: str, request_digest: str, now: datetime) -> Any:
    """Claim the key for this request: its owner id (a UUID), or the kept answer (a row) of the
    request that made it first; the contract's error when neither can be had."""
    owner = uuid4()
    claim = {"owner": owner, "request_digest": request_digest, "state": "running", "created_at": now}
    claim.update(status_code=None, content_type=None, body=None)
    if sql.insert_new(
        conn, idempotency_keys, {"app_id": app_id, "key_digest": key_digest, **claim}, ["app_id", "key_digest"]
    ):
        return owner
    row = conn.execute(select(idempotency_keys).where(*_where(app_id, key_digest)).with_for_update()).one()
    expired = row.created_at < now - KEEP
    abandoned = row.state == "running" and row.created_at < now - LEASE  # its process stopped before any work
    if not expired and row.request_digest != request_digest:
        raise bad_request(
            "idempotency_key_invalid", "Idempotency-Key", "This Idempotency-Key was used with a different request."
        )
    if expired or abandoned:
        conn.execute(update(idempotency_keys).where(*_where(app_id, key_digest)).values(claim))
        return owner
    if row.state == "done":
        return row
    if row.state == "applied" and row.created_at < now - LEASE:
        raise ApiError.one(
            409,
            "idempotency_answer_lost",
            None,
            "The request with this Idempotency-Key was carried out, but the server stopped before keeping its answer: "
            "read the current state instead of repeating it.",
        )
    raise _in_flight()


def mark_applied(app_id: UUID, key_digest: str, owner: UUID, conn: Connection) -> None:
    """In a write transaction of the request that claimed the key: its work is in it. A request
    so slow that a repeat took its claim over (``LEASE``) is refused here, its work undone with
    its transaction, so that only one of them does it."""
    mine = _where(app_id, key_digest, idempotency_keys.c.owner == owner)
    if conn.execute(update(idempotency_keys).where(*mine).values(state="applied")).rowcount != 1:
        raise _in_flight()


def _finish(database: db.Database, app_id: UUID, key_digest: str, owner: UUID, answer: dict[str, Any] | None) -> None:
    """Keep the answer of a request whose work committed; give the key up if it did none."""
    mine = _where(app_id, key_digest, idempotency_keys.c.owner == owner)
    with database.write(request_work=False) as conn:
        if answer is not None:
            kept = update(idempotency_keys).where(*mine, idempotency_keys.c.state == "applied")
            kept = kept.values(**answer, state="done")
            if conn.execute(kept).rowcount:
                return
        conn.execute(delete(idempotency_keys).where(*mine, idempotency_keys.c.state == "running"))


def prune(database: db.Database, now: datetime) -> int:
    """Delete the keys older than ``KEEP``; how many. With none to delete it only reads: an idle
    worker calls it, and takes no write lock for nothing."""
    old = idempotency_keys.c.created_at < now - KEEP
    with database.read() as conn:
        if conn.execute(select(idempotency_keys.c.app_id).where(old).limit(1)).first() is None:
            return 0
    with database.write(request_work=False) as conn:
        return conn.execute(delete(idempotency_keys).where(old)).rowcount


class Idempotency:
    """ASGI middleware: the API's writes sent with an ``Idempotency-Key`` (see the module).

    Runs inside ``ApiKeyAuth`` and ``WebApiAccess``, which find the request's app, and after
    ``RequestShape``, which hands the whole body over in one message.
    """

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        app_id: UUID | None = scope.get("state", {}).get("app_id") if scope["type"] == "http" else None
        if app_id is None or scope["method"] not in WRITES:
            return await self.app(scope, receive, send)
        headers = Headers(scope=scope)
        key = headers.get("idempotency-key")
        if key is None:
            return await self.app(scope, receive, send)
        if not 0 < len(key) <= MAX_KEY_LENGTH:
            error = bad_request(
                "idempotency_key_invalid", "Idempotency-Key", f"Must be 1 to {MAX_KEY_LENGTH} characters long."
            )
            return await error_response(error)(scope, receive, send)
        message = await receive()
        profile = [(headers.get(name) or "").encode("latin-1") for name in PROFILE_HEADERS]
        key_digest = _digest(key.encode("latin-1"), *profile)
        request = (scope["method"].encode(), scope["path"].encode(), scope["query_string"], message.get("body", b""))
        runtime = scope["app"].state.runtime
        now = runtime.clock.now()
        try:
            claimed = await runtime.write(_claimed, runtime.db, app_id, key_digest, _digest(*request), now)
        except ApiError as error:
            return await error_response(error)(scope, receive, send)
        if not isinstance(claimed, UUID):  # the kept answer
            kept = {REPLAYED: "true", "content-type": claimed.content_type}
            return await Response(claimed.body, claimed.status_code, kept)(scope, receive, send)
        await self._run(scope, message, receive, send, runtime, _Claim(app_id, key_digest, claimed))

    async def _run(
        self, scope: Scope, message: Message, receive: Receive, send: Send, runtime: Runtime, claim: _Claim
    ) -> None:
        answer: dict[str, Any] = {"body": b""}
        replayed = False

        async def replay() -> Message:  # the body read above, then whatever comes next (a disconnect)
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return message

        async def keep(sent: Message) -> None:
            if sent["type"] == "http.response.start":
                answer["status_code"] = sent["status"]
                answer["content_type"] = Headers(raw=sent.get("headers", [])).get("content-type", "")[:255]
            elif sent["type"] == "http.response.body":
                answer["body"] += sent.get("body", b"")
            await send(sent)

        token = db.in_every_write.set(partial(mark_applied, claim.app_id, claim.key_digest, claim.owner))
        try:
            await self.app(scope, replay, keep)
        finally:
            db.in_every_write.reset(token)
            kept = answer if "status_code" in answer else None
            await runtime.write(_finish, runtime.db, claim.app_id, claim.key_digest, claim.owner, kept)


def _claimed(database: db.Database, app_id: UUID, key_digest: str, request_digest: str, now: datetime) -> Any:
    with database.write(request_work=False) as conn:
        return _claim(conn, app_id, key_digest, request_digest, now)
