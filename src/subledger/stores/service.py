"""What the stores share: an app's store settings, receiving a verified notification
once, keeping it until its user is known, and the audit log of refused ones."""

import hashlib
import logging
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from pydantic import ValidationError
from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from subledger.core.dates import format_datetime, parse_datetime
from subledger.core.errors import NON_FIELD, ApiError, bad_request, from_validation_errors
from subledger.core.profile_ref import ProfileRef
from subledger.core.runtime import Runtime
from subledger.events import service as events_service
from subledger.profiles import service as profiles_service
from subledger.purchases import service as purchases_service
from subledger.purchases.schemas import StoreTransaction
from subledger.stores import repository, rules
from subledger.stores.rules import Notification

log = logging.getLogger("subledger.stores")

EXCERPT_BYTES = 4096


class StoreConfig:
    """An app's settings for one store, its secrets unsealed."""

    def __init__(self, settings: dict[str, Any], secrets: dict[str, str]):
        self.settings = settings
        self.secrets = secrets


def config(rt: Runtime, app_id: UUID, store: str) -> StoreConfig | None:
    with rt.db.read() as conn:
        row = repository.find_config(conn, app_id, store)
    if row is None:
        return None
    return StoreConfig(row["settings"], {name: rt.sealer.open(sealed) for name, sealed in row["secrets"].items()})


def connections(rt: Runtime, app_id: UUID) -> list[dict[str, Any]]:
    """The stores the app is connected to: each one's settings (certificates left out: they are
    long) and the names of its secrets, never their values."""
    with rt.db.read() as conn:
        rows = repository.list_configs(conn, app_id)
    return [
        {
            "store": row["store"],
            "settings": {name: value for name, value in row["settings"].items() if name != "root_certificates"},
            "secrets": sorted(row["secrets"]),
            "updated_at": format_datetime(row["updated_at"]),
        }
        for row in rows
    ]


def require_config(rt: Runtime, app_id: UUID, store: str, how: str) -> StoreConfig:
    """The app's settings for the store, for a call of the app's server; 400 when there are none."""
    found = config(rt, app_id, store)
    if found is None:
        raise bad_request("value_error", NON_FIELD, f"{store} is not configured for this app: {how}.")
    return found


def notification_config(rt: Runtime, app_id: UUID, store: str) -> StoreConfig:
    """The settings a store's notification is checked against. Without them (or without
    such an app) the URL is not a notification URL: 404, and nothing is logged."""
    found = config(rt, app_id, store)
    if found is None:
        raise ApiError.one(404, "not_found", NON_FIELD, f"No {store} notifications are accepted at this URL.")
    return found


def configure(
    rt: Runtime, app_id: UUID, store: str, settings: dict[str, Any], secrets: dict[str, str | None]
) -> dict[str, Any]:
    """Change an app's settings for a store: a None value leaves a setting as it is,
    an empty secret forgets it. Returns the settings and the names of the secrets set."""
    now = rt.clock.now()
    with rt.db.write() as conn:
        row = repository.find_config(conn, app_id, store) or {"settings": {}, "secrets": {}}
        merged_settings = {**row["settings"], **{k: v for k, v in settings.items() if v is not None}}
        merged_secrets = dict(row["secrets"])
        for name, value in secrets.items():
            if value == "":
                merged_secrets.pop(name, None)
            elif value is not None:
                merged_secrets[name] = rt.sealer.seal(value)
        repository.save_config(
            conn,
            {
                "app_id": app_id,
                "store": store,
                "settings": merged_settings,
                "secrets": merged_secrets,
                "updated_at": now,
            },
        )
    return {"store": store, "settings": merged_settings, "secrets": sorted(merged_secrets)}


# Store notification URLs take no key, so anyone may post junk to them: what fails verification
# is throttled (per app, and per client address within it) and the audit log keeps the newest
# of each app's; every one is counted.
REFUSED_PER_MINUTE = 300  # per app
REFUSED_PER_MINUTE_FROM_ONE_ADDRESS = 30
REFUSED_KEPT = 1000  # per app, besides the last minute's (at most REFUSED_PER_MINUTE)


def refuse(rt: Runtime, app_id: UUID, store: str, reason: str, body: bytes, remote: str | None) -> ApiError:
    """Write a request that failed verification to the audit log; returns the 400 to answer with
    (a 429 past the throttle, with nothing written but the count)."""
    now = rt.clock.now()
    minute_ago = now - timedelta(minutes=1)
    with rt.db.write() as conn:
        from_anywhere, from_there = repository.refused_since(conn, app_id, minute_ago, remote)
        if from_anywhere >= REFUSED_PER_MINUTE or from_there >= REFUSED_PER_MINUTE_FROM_ONE_ADDRESS:
            repository.count_refused(conn, app_id, not_kept=1)
            return ApiError.one(
                429, "rate_limited", NON_FIELD, "Too many requests that failed verification: try again later."
            ).retry_after(60)
        log.warning("refused a %s notification for app %s: %s", store, app_id, reason)
        repository.insert_refused(
            conn,
            {
                "id": uuid4(),
                "app_id": app_id,
                "store": store,
                "received_at": now,
                "reason": reason[:1024],
                "remote_address": remote,
                "body_sha256": hashlib.sha256(body).hexdigest(),
                "body_excerpt": body[:EXCERPT_BYTES].decode("utf-8", "replace"),
            },
        )
        # The last minute's stay whatever their number: the throttle counts them.
        dropped = repository.drop_oldest_refused(conn, app_id, REFUSED_KEPT, minute_ago)
        repository.count_refused(conn, app_id, not_kept=dropped)
    return ApiError.one(400, "notification_not_verified", NON_FIELD, reason)


def unreadable_answer(store: str, error: Exception) -> ApiError:
    """The 502 for a store API answer that is not what the store documents (``rules.UNREADABLE``)."""
    reason = f"The {store} API's answer could not be read: {type(error).__name__} {error}"
    return ApiError.one(502, "store_answer_unreadable", NON_FIELD, reason)


# Receiving -------------------------------------------------------------------------


def receive(rt: Runtime, app_id: UUID, notification: Notification, raw: bytes | None = None) -> str:
    """Apply a verified notification to its user's ledger, or keep it until the user is known;
    ``raw``, the notification as the store sent it, goes to the app's forward URL for the store
    if it has one.

    Returns what became of it: applied, pending, stale, ignored, or duplicate
    (seen before: nothing changes, nothing is forwarded).
    """
    now = rt.clock.now()
    try:
        with rt.db.write() as conn:
            if repository.notification_known(conn, app_id, notification.store, notification.notification_id):
                return "duplicate"
            if raw is not None and _forwards(conn, app_id, notification.store):
                events_service.forward(conn, app_id, notification.store, raw, now)
            row = {
                "id": uuid4(),
                "app_id": app_id,
                **asdict(notification),
                "received_at": now,
                "status": "pending" if notification.changes_ledger else "ignored",
                "note": None,
                "profile_id": None,
                "applied_at": None,
            }
            profile = _owner(conn, app_id, notification) if notification.changes_ledger else None
            if profile is not None:
                outcome = _apply(rt, conn, profile, notification, now)
                outcome.pop("timestamp")
                row.update(outcome)
            repository.insert_notification(conn, row)
            if profile is not None:
                _apply_pending_of_chain(rt, conn, profile, notification, now)
    except IntegrityError:
        return "duplicate"  # the same notification, received twice at once: the other one counts
    status: str = row["status"]
    return status


# The stores whose notifications an app may have forwarded, as they came.
FORWARDED = ("app_store", "play_store")


def _forwards(conn: Connection, app_id: UUID, store: str) -> bool:
    found = repository.find_config(conn, app_id, store)
    return found is not None and bool(found["settings"].get("forward_url"))


def set_forwarding(
    rt: Runtime, app_id: UUID, store: str, url: str | None, authorization: str | None = None
) -> dict[str, Any]:
    """Forward every verified notification of ``store`` to ``url`` from now on, as the store sent
    it, with ``authorization`` as its Authorization header (None: stop forwarding). The store
    must be configured; ValueError for a URL the server may not send to."""
    if store not in FORWARDED:
        raise ValueError(f"only {' and '.join(FORWARDED)} notifications are forwarded")
    if config(rt, app_id, store) is None:
        raise ValueError(f"{store} is not configured for this app: configure it first")
    if url is not None:
        events_service.check_target(rt, url)
    with rt.db.write() as conn:
        found = repository.find_config(conn, app_id, store) or {"settings": {}, "secrets": {}}
        settings, secrets = dict(found["settings"]), dict(found["secrets"])
        settings.pop("forward_url", None)
        secrets.pop("forward_authorization", None)
        if url is not None:
            settings["forward_url"] = url
            if authorization:
                secrets["forward_authorization"] = rt.sealer.seal(authorization)
        repository.save_config(
            conn,
            {"app_id": app_id, "store": store, "settings": settings, "secrets": secrets, "updated_at": rt.clock.now()},
        )
    return {"store": store, "forward_url": url, "has_authorization": "forward_authorization" in secrets}


def seen(rt: Runtime, app_id: UUID, notification: Notification) -> bool:
    """Whether this notification was received before."""
    with rt.db.read() as conn:
        return repository.notification_known(conn, app_id, notification.store, notification.notification_id)


def record_for_profile(rt: Runtime, app_id: UUID, ref: ProfileRef, notification: Notification) -> dict[str, Any]:
    """Record what the app's server sends for one of its profiles (a StoreKit
    transaction, a Play purchase token), then what was pending for its chain."""
    now = rt.clock.now()
    with rt.db.write() as conn:
        profile = profiles_service.lock(conn, app_id, ref)
        outcome = _apply(rt, conn, profile, notification, now, strict=True)
        timestamp = _apply_pending_of_chain(rt, conn, profile, notification, now) or outcome["timestamp"]
    return profiles_service.respond(profile, now, timestamp)


def apply_pending(rt: Runtime, batch: int = 100) -> int:
    """Apply the pending notifications whose user has become known; returns how many."""
    with rt.db.read() as conn:
        candidates = repository.resolvable_pending(conn, batch)
    applied = 0
    for candidate in candidates:
        now = rt.clock.now()
        with rt.db.write() as conn:
            row = repository.lock_pending(conn, candidate["id"])
            if row is None:
                continue  # another worker took it
            notification = _from_row(row)
            profile = _owner(conn, row["app_id"], notification)
            if profile is None:
                continue
            outcome = _apply(rt, conn, profile, notification, now)
            outcome.pop("timestamp")
            repository.update_notification(conn, row["id"], outcome)
            applied += 1
    return applied


def list_notifications(
    rt: Runtime, app_id: UUID, store: str | None = None, status: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    with rt.db.read() as conn:
        return repository.list_notifications(conn, app_id, store, status, limit)


def list_refused(rt: Runtime, app_id: UUID, limit: int = 100) -> list[dict[str, Any]]:
    with rt.db.read() as conn:
        return repository.list_refused(conn, app_id, limit)


def refused_totals(rt: Runtime, app_id: UUID) -> dict[str, int]:
    """How many store requests the app refused, and how many of them the audit log did not keep."""
    with rt.db.read() as conn:
        return repository.refused_totals(conn, app_id)


def prune(rt: Runtime, before: datetime, app_id: UUID | None = None, page: int = 1000) -> dict[str, int]:
    """Delete what was received before ``before``: the notifications done with (the newest
    applied one of each subscription chain stays, to tell a late older one that it is stale)
    and the refused requests; a page per transaction. How many of each."""
    return {
        "store_notifications": _in_pages(rt, repository.delete_settled, before, app_id, page),
        "refused_notifications": _in_pages(rt, repository.delete_refused, before, app_id, page),
    }


def _in_pages(
    rt: Runtime,
    delete_page: Callable[[Connection, datetime, UUID | None, int], int],
    before: datetime,
    app_id: UUID | None,
    page: int,
) -> int:
    deleted = 0
    while True:
        with rt.db.write() as conn:
            count = delete_page(conn, before, app_id, page)
        deleted += count
        if count < page:
            return deleted


def notification_out(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "store": row["store"],
        "notification_id": row["notification_id"],
        "kind": row["kind"],
        "status": row["status"],
        "note": row["note"],
        "signed_at": format_datetime(row["signed_at"]),
        "received_at": format_datetime(row["received_at"]),
        "applied_at": format_datetime(row["applied_at"]),
        "profile_id": str(row["profile_id"]) if row["profile_id"] else None,
        "store_original_transaction_id": row["original_transaction_id"],
        "account": row["account"],
        "transactions": row["transactions"],
        "refunds": row["refunds"],
    }


def refused_out(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "store": row["store"],
        "received_at": format_datetime(row["received_at"]),
        "reason": row["reason"],
        "remote_address": row["remote_address"],
        "body_sha256": row["body_sha256"],
        "body_excerpt": row["body_excerpt"],
    }


# In the caller's write transaction -----------------------------------------------


def _owner(conn: Connection, app_id: UUID, notification: Notification) -> dict[str, Any] | None:
    """The profile a notification belongs to, locked: the one whose ledger holds its
    chain, else the one its account names (as customer_user_id or profile_id)."""
    chain = notification.original_transaction_id
    if chain:
        owner = purchases_service.chain_owner(conn, app_id, notification.store, chain)
        if owner is not None:
            return profiles_service.find_locked(conn, app_id, profile_id=owner)
    account = notification.account
    if not account:
        return None
    profile = profiles_service.find_locked(conn, app_id, customer_user_id=account)
    if profile is None and (profile_id := _as_uuid(account)) is not None:
        profile = profiles_service.find_locked(conn, app_id, profile_id=profile_id)
    return profile


def _apply(
    rt: Runtime,
    conn: Connection,
    profile: dict[str, Any],
    notification: Notification,
    now: datetime,
    strict: bool = False,
    newest_seen: datetime | None = None,
) -> dict[str, Any]:
    """Lay the notification over the profile's ledger; returns the notification row's new fields.

    A notification older than one already applied to its chain only adds the
    transactions the ledger lacks (stores do not promise order). One whose
    transactions the set-transaction rules refuse changes nothing and is kept
    as ignored with the reason (with ``strict``, the refusal is raised instead).
    ``newest_seen`` counts as applied to the chain too.
    """
    app_id = profile["app_id"]
    store = notification.store
    chain = notification.original_transaction_id
    applied = [repository.latest_applied(conn, app_id, store, chain) if chain else None, newest_seen]
    latest = max((at for at in applied if at is not None), default=None)
    stale = latest is not None and latest > notification.signed_at
    try:
        with conn.begin_nested():
            transactions = []
            for body in notification.transactions:
                existing = purchases_service.find_transaction(conn, app_id, store, body["store_transaction_id"])
                if stale and existing is not None:
                    continue
                transactions.append(StoreTransaction.model_validate(rules.merge(body, existing)))
            refunds = {key: parse_datetime(at) for key, at in notification.refunds.items()}
            timestamp = purchases_service.record_store_account(rt, conn, profile, store, transactions, refunds, now)
    except (ApiError, ValidationError) as refused:
        error = from_validation_errors(refused.errors()) if isinstance(refused, ValidationError) else refused
        if strict:
            raise error from None
        note = error.summary()
        log.warning("%s notification %s not applied: %s", store, notification.notification_id, note)
        return {"status": "ignored", "note": note[:1024], "profile_id": profile["id"], "timestamp": None}
    return {
        "status": "stale" if stale else "applied",
        "profile_id": profile["id"],
        "applied_at": now,
        "timestamp": timestamp,
    }


def _apply_pending_of_chain(
    rt: Runtime, conn: Connection, profile: dict[str, Any], notification: Notification, now: datetime
) -> int | None:
    """Apply what was pending for the chain now that ``notification`` gave it an owner
    (older ones count as stale against it); the last timestamp, if any."""
    if not notification.original_transaction_id:
        return None
    timestamp = None
    for row in repository.pending_of_chain(
        conn, profile["app_id"], notification.store, notification.original_transaction_id
    ):
        outcome = _apply(rt, conn, profile, _from_row(row), now, newest_seen=notification.signed_at)
        timestamp = outcome.pop("timestamp") or timestamp
        repository.update_notification(conn, row["id"], outcome)
    return timestamp


def _from_row(row: dict[str, Any]) -> Notification:
    return Notification(
        store=row["store"],
        notification_id=row["notification_id"],
        kind=row["kind"],
        signed_at=row["signed_at"],
        original_transaction_id=row["original_transaction_id"],
        account=row["account"],
        transactions=row["transactions"],
        refunds=row["refunds"],
    )


def _as_uuid(value: str) -> UUID | None:
    try:
        return UUID(value)
    except ValueError:
        return None
