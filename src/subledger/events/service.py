"""Event use cases: emitting into the outbox, the feed, webhook endpoints, dead letters."""

import asyncio
import secrets
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import httpx
import orjson
from sqlalchemy import Connection

from subledger import __version__
from subledger.catalog import service as catalog_service
from subledger.catalog.rules import Rates
from subledger.core import app_config
from subledger.core.dates import format_datetime
from subledger.core.errors import ApiError, bad_request
from subledger.core.runtime import Runtime
from subledger.events import repository, rules, targets
from subledger.events.rules import Change
from subledger.events.schemas import EndpointChange, EndpointIn, EndpointOptions, TestEventIn


def chain_of(tx: dict[str, Any], ledger: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The transactions of ``tx``'s subscription chain (itself alone for a one-time purchase)."""
    if tx["purchase_type"] != "subscription":
        return [tx]
    key = (tx["store"], tx["store_original_transaction_id"])
    return [item for item in ledger if (item["store"], item["store_original_transaction_id"]) == key]


def emit(
    conn: Connection,
    rt: Runtime,
    profile: dict[str, Any],
    changes: list[Change],
    ledger: list[dict[str, Any]],
    now: datetime,
    rates: Rates | None = None,
) -> None:
    """Write ``changes`` as events, with a delivery for every endpoint that wants each,
    in the caller's transaction: they commit with the change or not at all.

    ``profile`` is as locking it gives it: with its ``latest_installation``, the
    device the events carry."""
    if not changes:
        return
    app_id = profile["app_id"]
    small_business, tax_rate = app_config.cached(
        conn, app_id, "revenue_settings", lambda: repository.app_revenue_settings(conn, app_id)
    )
    moment = format_datetime(now)
    levels = (profile.get("derived") or {}).get("access_levels", [])
    by_transaction = {(tx["store"], tx["store_transaction_id"]): tx for tx in ledger}
    level_transactions = [
        by_transaction.get((change.access_level["store"], change.access_level["store_transaction_id"]))
        if change.access_level
        else None
        for change in changes
    ]
    variations = {
        tx["variation_id"]
        for tx in [change.transaction for change in changes] + level_transactions
        if tx and tx.get("variation_id")
    }
    context = rules.Context(
        profile=profile,
        installation=profile["latest_installation"],
        has_access_level=any(rules.is_active(level, moment) for level in levels),
        rates=catalog_service.rates(conn, app_id) if rates is None else rates,
        small_business=small_business,
        tax_rate=tax_rate,
        paywalls={
            variation: found
            for variation in variations
            if (found := repository.paywall_of(conn, app_id, profile["id"], variation)) is not None
        },
    )
    endpoints = app_config.cached(conn, app_id, "endpoints", lambda: tuple(repository.endpoints_for(conn, app_id)))
    rows = []
    for change, level_tx in zip(changes, level_transactions, strict=True):
        event_id = uuid4()
        chain = chain_of(change.transaction, ledger) if change.transaction else []
        rows.append(
            {
                "id": event_id,
                "app_id": app_id,
                "profile_id": profile["id"],
                "customer_user_id": profile.get("customer_user_id"),
                "event_type": change.event_type,
                "event_datetime": change.at,
                "payload": rules.payload(change, str(event_id), context, chain, now, level_tx),
                "created_at": now,
            }
        )
    _schedule_still_active(conn, profile, changes)
    # The endpoints that want each event, with the URL it goes to: without any, the events need
    # no sequence numbers back.
    wanted = [
        [
            (point, target)
            for point in endpoints
            if rules.wants(point, change, target := rules.environment_of(change), profile.get("created_at"))
        ]
        for change in changes
    ]
    if not any(wanted):
        repository.insert_events(conn, rows)
        return
    sequences = repository.insert_numbered_events(conn, rows)
    repository.insert_deliveries(
        conn,
        [
            {
                "id": uuid4(),
                "event_sequence": sequence,
                "endpoint_id": endpoint["id"],
                "target": target,
                "profile_id": profile["id"],
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            }
            for receivers, sequence in zip(wanted, sequences, strict=True)
            for endpoint, target in receivers
        ],
    )


def _schedule_still_active(conn: Connection, profile: dict[str, Any], changes: list[Change]) -> None:
    """Arm the "still active" checks the app asks for, for the trials and subscriptions that start."""
    starts = [change for change in changes if change.event_type in rules.STILL_ACTIVE.values()]
    if not starts:
        return
    app_id = profile["app_id"]
    delays = app_config.cached(conn, app_id, "still_active", lambda: repository.still_active_delays(conn, app_id))
    for event_type, days in delays.items():
        for change in starts:
            tx = change.transaction
            if change.event_type == rules.STILL_ACTIVE[event_type] and tx is not None:  # starts have theirs
                repository.schedule_check(
                    conn,
                    {
                        "profile_id": profile["id"],
                        "app_id": app_id,
                        "store": tx["store"],
                        "store_original_transaction_id": tx["store_original_transaction_id"],
                        "event_type": event_type,
                        "due_at": change.at + timedelta(days=days),
                    },
                )


def any_check_due(conn: Connection, now: datetime) -> bool:
    return repository.any_check_due(conn, now)


def claim_due_checks(conn: Connection, now: datetime, limit: int) -> list[dict[str, Any]]:
    """Scheduled "still active" checks whose time has come, marked fired in the caller's
    transaction (which emits their events); on PostgreSQL, ones another worker holds are skipped."""
    due = repository.due_checks(conn, now, limit)
    for check in due:
        repository.mark_check_fired(conn, check)
    return due


def schedule_expiries(
    conn: Connection, profile: dict[str, Any], ledger: list[dict[str, Any]], written: list[tuple[str, str]]
) -> None:
    """Arm an expiry event at the time access runs out, for each subscription chain that
    holds one of the ``written`` transactions (store, store_transaction_id): the others
    are as the last change that wrote them left them."""
    keys = set(written)
    chains: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for tx in ledger:
        if tx["purchase_type"] == "subscription":
            chains.setdefault((tx["store"], tx["store_original_transaction_id"]), []).append(tx)
    for (store, original_id), chain in chains.items():
        if not any((tx["store"], tx["store_transaction_id"]) in keys for tx in chain):
            continue
        latest = max(chain, key=lambda tx: (tx["purchased_at"], tx["store_transaction_id"]))
        due = rules.expiry_of(latest)
        if due is None:
            repository.unschedule_expiry(conn, profile["id"], store, original_id)
        else:
            repository.schedule_expiry(
                conn,
                {
                    "profile_id": profile["id"],
                    "app_id": profile["app_id"],
                    "store": store,
                    "store_original_transaction_id": original_id,
                    "due_at": due,
                },
            )


def any_expiry_due(conn: Connection, now: datetime) -> bool:
    return repository.any_expiry_due(conn, now)


def claim_due_expiries(conn: Connection, now: datetime, limit: int) -> list[dict[str, Any]]:
    """Scheduled expiries whose time has come, marked fired in the caller's transaction
    (which emits their events); on PostgreSQL, ones another worker holds are skipped."""
    due = repository.due_expiries(conn, now, limit)
    for expiry in due:
        repository.mark_fired(conn, expiry)
    return due


# The feed -------------------------------------------------------------------------


def feed(
    rt: Runtime,
    app_id: UUID,
    cursor: int | None,
    limit: int,
    profile_id: UUID | None,
    event_types: list[str] | None,
    since: datetime | None,
    until: datetime | None,
) -> dict[str, Any]:
    with rt.db.lagging_read() as conn:
        rows = repository.event_feed(conn, app_id, cursor, limit, profile_id, event_types, since, until)
    return {
        "data": [
            {
                "profile_event_id": str(row["id"]),
                "event_type": row["event_type"],
                "event_datetime": format_datetime(row["event_datetime"]),
                "profile_id": str(row["profile_id"]),
                "customer_user_id": row["customer_user_id"],
                "created_at": format_datetime(row["created_at"]),
                "payload": row["payload"],
            }
            for row in rows
        ],
        "next_cursor": str(rows[-1]["sequence"]) if len(rows) == limit else None,
    }


def prune(rt: Runtime, before: datetime, app_id: UUID | None = None, page: int = 1000) -> int:
    """Delete the events recorded before ``before`` whose every delivery went through, with
    their deliveries; an event with a delivery still due or dead-lettered stays. A page per
    transaction, so that writers wait little. How many went."""
    pruned, after = 0, None
    while True:
        with rt.db.write() as conn:
            rows = repository.events_page(conn, app_id, after, page)
            old = [row for row in rows if row["created_at"] < before]
            repository.delete_events(conn, [row["sequence"] for row in old if not row["undelivered"]])
        pruned += sum(not row["undelivered"] for row in old)
        if not old:  # the feed is in the order events were recorded: the rest are newer
            return pruned
        after = rows[-1]["sequence"]


# Webhook endpoints ------------------------------------------------------------------


OPTIONS = tuple(EndpointOptions.model_fields)
# Each URL an endpoint may have: its field, its Authorization value's field and that value's column.
URLS = (
    ("url", "authorization", "authorization_header"),
    ("sandbox_url", "sandbox_authorization", "sandbox_authorization_header"),
)


def endpoint_out(row: dict[str, Any]) -> dict[str, Any]:
    """An endpoint as the admin API shows it: its secrets only as whether there are any."""
    return {
        "endpoint_id": str(row["id"]),
        "url": row["url"],
        "sandbox_url": row["sandbox_url"],
        "event_types": row["event_types"],
        "event_names": row["event_names"] or {},
        "has_authorization": row["authorization_header"] is not None,
        "has_sandbox_authorization": row["sandbox_authorization_header"] is not None,
        **{option: row[option] for option in OPTIONS},
        "created_at": format_datetime(row["created_at"]),
    }


async def deliver(
    http: httpx.AsyncClient,
    url: str,
    body: bytes,
    event_id: str,
    signing_secret: str | None,
    authorization: str | None,
    now: datetime,
    timeout: float,
    allow_private: bool,
) -> int:
    """One POST of a webhook body, signed with ``signing_secret`` if there is one; returns the
    status code.

    The whole exchange, from resolving the host to the status line, ends within ``timeout``
    seconds (``TimeoutError`` otherwise): httpx's timeouts bound each read, and a receiver that
    trickled its answer a byte at a time would hold the sender as long as it liked. The
    request goes to an address ``targets`` vetted (``RefusedTarget`` if none may be sent to).
    The answer's body is never read, so no receiver can make the sender take a body of any size."""
    headers = {
        "Content-Type": "application/json",
        "User-Agent": f"subledger/{__version__}",
        rules.EVENT_ID_HEADER: event_id,
    }
    if signing_secret:
        headers[rules.SIGNATURE_HEADER] = rules.signature(signing_secret, int(now.timestamp()), body)
    if authorization:
        headers["Authorization"] = authorization
    async with asyncio.timeout(timeout):
        target = await targets.pin(url, allow_private)
        async with http.stream(
            "POST",
            target.url,
            content=body,
            headers={**headers, **target.headers},
            extensions=target.extensions,
            timeout=timeout,
        ) as response:
            return response.status_code


async def _verify(rt: Runtime, source: str, url: str, authorization: str | None, signing_secret: str) -> None:
    """The verification request: ``POST {}``, to be answered with 2xx; ApiError naming
    ``source`` else. It waits on the event loop (no thread, no database connection), so
    endpoints slow to answer hold up nothing else."""
    timeout = rt.settings.webhook_timeout_seconds
    allow_private = rt.settings.webhook_allow_private_networks
    try:
        async with httpx.AsyncClient() as client:
            status = await deliver(
                client,
                url,
                b"{}",
                "verification",
                signing_secret,
                authorization,
                rt.clock.now(),
                timeout,
                allow_private,
            )
    except targets.RefusedTarget as refused:  # nothing was sent
        raise bad_request("base_error", source, str(refused)) from None
    except (httpx.InvalidURL, UnicodeError) as exc:  # a host name that no resolver takes (IDNA, label lengths)
        raise bad_request("base_error", source, f"This URL cannot be requested: {exc}.") from None
    except TimeoutError:
        raise bad_request(
            "webhook_verification_failed", source, f"The endpoint did not answer within {timeout:g} seconds."
        ) from None
    except httpx.HTTPError:
        # What went wrong past resolving is not said: it would tell what listens where.
        raise bad_request("webhook_verification_failed", source, "The endpoint could not be reached.") from None
    if not httpx.codes.is_success(status):
        raise bad_request(
            "webhook_verification_failed", source, f"The endpoint answered the verification request with {status}."
        )


def _check_types(event_types: list[str], event_names: dict[str, str]) -> None:
    for source, named in (("event_types", event_types), ("event_names", event_names)):
        unknown = sorted(set(named) - set(rules.EVENT_TYPES))
        if unknown:
            raise bad_request("invalid_enumeration_member", source, f"Unknown event types: {', '.join(unknown)}.")


def _no_url() -> ApiError:
    return bad_request(
        "validation_error", "url", "Give a url (production events), a sandbox_url (sandbox events), or both."
    )


async def register_endpoint(rt: Runtime, app_id: UUID, body: EndpointIn) -> dict[str, Any]:
    """Save an endpoint once each of its URLs answers a verification request.

    Returns the endpoint with its signing secret (shown this once; stored sealed)."""
    url, sandbox_url = (str(body.url) if body.url else None), (str(body.sandbox_url) if body.sandbox_url else None)
    if url is None and sandbox_url is None:
        raise _no_url()
    types = body.event_types or rules.DEFAULT_TYPES
    _check_types(types, body.event_names or {})
    signing_secret = "whsec_" + secrets.token_urlsafe(32)
    for url_field, auth_field, _column in URLS:
        if getattr(body, url_field) is not None:
            await _verify(rt, url_field, str(getattr(body, url_field)), getattr(body, auth_field), signing_secret)
    row = {
        "id": uuid4(),
        "app_id": app_id,
        "url": url,
        "sandbox_url": sandbox_url,
        "event_types": types,
        "event_names": body.event_names or None,
        "authorization_header": rt.sealer.seal(body.authorization) if body.authorization else None,
        "sandbox_authorization_header": (
            rt.sealer.seal(body.sandbox_authorization) if body.sandbox_authorization else None
        ),
        "signing_secret": rt.sealer.seal(signing_secret),
        **{option: getattr(body, option) for option in OPTIONS},
        "created_at": rt.clock.now(),
    }
    await rt.write(_save_endpoint, rt, row)
    return {**endpoint_out(row), "signing_secret": signing_secret}


def _save_endpoint(rt: Runtime, row: dict[str, Any]) -> None:
    with rt.db.write() as conn:
        repository.insert_endpoint(conn, row)


def _endpoint_missing() -> ApiError:
    return ApiError.one(404, "webhook_does_not_exist", None, "Webhook endpoint not found")


def find_endpoint(rt: Runtime, app_id: UUID, endpoint_id: UUID) -> dict[str, Any]:
    with rt.db.read() as conn:
        found = repository.find_endpoint(conn, app_id, endpoint_id)
    if found is None:
        raise _endpoint_missing()
    return found


async def update_endpoint(rt: Runtime, app_id: UUID, endpoint_id: UUID, change: EndpointChange) -> dict[str, Any]:
    """Change what ``change`` names; a URL that changes, or whose authorization does, is
    verified again first."""
    current = await rt.read(find_endpoint, rt, app_id, endpoint_id)
    given = change.model_fields_set
    values: dict[str, Any] = {}
    for url_field, auth_field, column in URLS:
        if url_field in given:
            values[url_field] = str(getattr(change, url_field)) if getattr(change, url_field) else None
        if auth_field in given:
            authorization = getattr(change, auth_field)
            values[column] = rt.sealer.seal(authorization) if authorization else None
    if values.get("url", current["url"]) is None and values.get("sandbox_url", current["sandbox_url"]) is None:
        raise _no_url()
    if "event_types" in given:
        if change.event_types is None:
            raise bad_request("validation_error", "event_types", "Name at least one event type.")
        values["event_types"] = change.event_types
    if "event_names" in given:
        values["event_names"] = change.event_names or None
    _check_types(values.get("event_types", current["event_types"]), values.get("event_names") or {})
    values.update({option: getattr(change, option) for option in OPTIONS if getattr(change, option) is not None})
    signing_secret = rt.sealer.open(current["signing_secret"])
    for url_field, _auth_field, column in URLS:
        url = values.get(url_field, current[url_field])
        if url is not None and (url_field in values or column in values):
            sealed = values.get(column, current[column])
            await _verify(rt, url_field, url, rt.sealer.open(sealed) if sealed else None, signing_secret)
    return endpoint_out(await rt.write(_change_endpoint, rt, app_id, endpoint_id, values))


def _change_endpoint(rt: Runtime, app_id: UUID, endpoint_id: UUID, values: dict[str, Any]) -> dict[str, Any]:
    with rt.db.write() as conn:
        if values:
            repository.update_endpoint(conn, app_id, endpoint_id, values)
        changed = repository.find_endpoint(conn, app_id, endpoint_id)
    if changed is None:  # deleted meanwhile
        raise _endpoint_missing()
    return changed


async def send_test_event(rt: Runtime, app_id: UUID, endpoint_id: UUID, body: TestEventIn) -> dict[str, Any]:
    """Send a sample event of ``event_type`` to one of the endpoint's URLs now, as a delivery
    would be sent (its options and names applied, signed), and say how it was answered. It is
    not an event: nothing is recorded."""
    _check_types([body.event_type], {})
    endpoint = await rt.read(find_endpoint, rt, app_id, endpoint_id)
    url, authorization = rules.target_of(endpoint, body.target)
    if url is None:
        raise bad_request("validation_error", "target", f"The endpoint has no {body.target} URL.")
    now = rt.clock.now()
    payload = rules.delivered_body(rules.sample_payload(body.event_type, str(uuid4()), now), endpoint)
    started = asyncio.get_running_loop().time()
    status_code, error = None, None
    try:
        async with httpx.AsyncClient() as client:
            status_code = await deliver(
                client,
                url,
                orjson.dumps(payload),
                payload["event_properties"]["profile_event_id"],
                rt.sealer.open(endpoint["signing_secret"]),
                rt.sealer.open(authorization) if authorization else None,
                now,
                rt.settings.webhook_timeout_seconds,
                rt.settings.webhook_allow_private_networks,
            )
    except targets.RefusedTarget as refused:
        error = f"Refused: {refused}"
    except TimeoutError:
        error = f"No answer within {rt.settings.webhook_timeout_seconds:g} seconds."
    except httpx.HTTPError:
        error = "The endpoint could not be reached."
    elapsed = asyncio.get_running_loop().time() - started
    return {"status_code": status_code, "error": error, "duration_ms": int(elapsed * 1000), "sent": payload}


def list_endpoints(rt: Runtime, app_id: UUID) -> list[dict[str, Any]]:
    with rt.db.read() as conn:
        return [endpoint_out(row) for row in repository.endpoints_for(conn, app_id)]


def delete_endpoint(rt: Runtime, app_id: UUID, endpoint_id: UUID) -> None:
    with rt.db.write() as conn:
        if repository.find_endpoint(conn, app_id, endpoint_id) is None:
            raise _endpoint_missing()
        repository.delete_endpoint(conn, app_id, endpoint_id)


def list_deliveries(
    rt: Runtime, app_id: UUID, status: str | None = None, endpoint_id: UUID | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """Deliveries, newest first, each with its attempts."""
    with rt.db.lagging_read() as conn:
        rows = repository.list_deliveries(conn, app_id, status, endpoint_id, limit)
        attempts: dict[UUID, list[dict[str, Any]]] = {}
        for attempt in repository.attempts_of(conn, [row["id"] for row in rows]):
            attempts.setdefault(attempt["delivery_id"], []).append(
                {
                    "attempted_at": format_datetime(attempt["attempted_at"]),
                    "status_code": attempt["status_code"],
                    "error": attempt["error"],
                    "duration_ms": attempt["duration_ms"],
                }
            )
    return [
        {
            "delivery_id": str(row["id"]),
            "endpoint_id": str(row["endpoint_id"]),
            "event_id": str(row["event_id"]),
            "event_type": row["event_type"],
            "status": row["status"],
            "attempts": attempts.get(row["id"], []),
            "next_attempt_at": format_datetime(row["next_attempt_at"]) if row["status"] == "pending" else None,
            "delivered_at": format_datetime(row["delivered_at"]),
        }
        for row in rows
    ]


def backlog(rt: Runtime) -> dict[str, Any]:
    """Deliveries of every app waiting (``pending``), refused by their receivers (``refused``)
    and dead-lettered (``dead``), and how
    long the most overdue one has been due (``overdue_seconds``, 0 when none is)."""
    with rt.db.lagging_read() as conn:
        found = repository.backlog(conn)
    due_since = found.pop("due_since")
    overdue = (rt.clock.now() - due_since).total_seconds() if due_since else 0.0
    return {**found, "overdue_seconds": max(overdue, 0.0)}


# Raw store notifications forwarded ----------------------------------------------------


def check_target(rt: Runtime, url: str) -> None:
    """ValueError, saying why to the person who gave it, unless the server may send to ``url``
    (``targets``: its form, and a public address unless private networks are allowed)."""
    try:
        asyncio.run(targets.resolve(targets.check_url(url), rt.settings.webhook_allow_private_networks))
    except (httpx.InvalidURL, UnicodeError) as exc:
        raise ValueError(f"This URL cannot be requested: {exc}.") from None
    except httpx.ConnectError as exc:
        raise ValueError(str(exc)) from None


def forward(conn: Connection, app_id: UUID, store: str, body: bytes, now: datetime) -> None:
    """Queue a verified store notification, as the store sent it, for the app's forward URL for
    that store, in the caller's transaction: it is recorded and forwarded, or neither."""
    repository.insert_forward(
        conn,
        {
            "id": uuid4(),
            "app_id": app_id,
            "store": store,
            "body": body,
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        },
    )


def list_forwards(rt: Runtime, app_id: UUID, status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """Forwarded notifications, newest first (their bodies left out)."""
    with rt.db.lagging_read() as conn:
        rows = repository.list_forwards(conn, app_id, status, limit)
    return [
        {
            "forward_id": str(row["id"]),
            "store": row["store"],
            "status": row["status"],
            "attempts": row["attempts"],
            "last_status_code": row["last_status_code"],
            "last_error": row["last_error"],
            "created_at": format_datetime(row["created_at"]),
            "delivered_at": format_datetime(row["delivered_at"]),
        }
        for row in rows
    ]


def prune_forwards(rt: Runtime, before: datetime, app_id: UUID | None = None) -> int:
    """Delete the forwards made before ``before`` that were delivered; how many went."""
    with rt.db.write() as conn:
        return repository.delete_delivered_forwards(conn, app_id, before)


def replay_forwards(rt: Runtime, app_id: UUID) -> int:
    """Queue the app's dead and refused forwards again; returns how many."""
    with rt.db.write() as conn:
        return repository.replay_forwards(conn, app_id, rt.clock.now())


def replay(rt: Runtime, app_id: UUID, delivery_ids: list[UUID] | None = None) -> int:
    """Queue dead-lettered and refused deliveries again; returns how many."""
    with rt.db.write() as conn:
        return repository.replay(conn, app_id, delivery_ids, rt.clock.now())
