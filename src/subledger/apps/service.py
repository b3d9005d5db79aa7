"""Use cases for apps and API keys, and request authentication."""

import hmac
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import Table

from subledger.apps import repository, rules
from subledger.core import buckets
from subledger.core.clock import Clock
from subledger.core.dates import format_datetime
from subledger.core.db import Database
from subledger.core.runtime import Runtime
from subledger.core.tables import rate_buckets


class AppNotFound(LookupError):
    pass


def create_app(db: Database, name: str, now: datetime) -> dict[str, Any]:
    """A new app, its first secret key and its public key (shown this once: only their hashes
    are kept); ValueError for a name the apps table cannot hold."""
    if not name.strip() or len(name) > 255:
        raise ValueError("an app's name is 1 to 255 characters long")
    app_id = uuid4()
    keys = {kind: rules.new_key(kind) for kind in (rules.SECRET, rules.PUBLIC)}
    with db.write() as conn:
        repository.insert_app(conn, app_id, name, now)
        for kind, key in keys.items():
            repository.insert_key(conn, app_id, key, kind, now)
    return {
        "app_id": str(app_id),
        "name": name,
        "secret_api_key": keys[rules.SECRET],
        "public_api_key": keys[rules.PUBLIC],
        "created_at": format_datetime(now),
    }


def list_apps(db: Database, now: datetime) -> list[dict[str, Any]]:
    with db.read() as conn:
        rows = repository.list_apps(conn, now)
    return [
        {
            "app_id": str(row["id"]),
            "name": row["name"],
            "created_at": format_datetime(row["created_at"]),
            "active_keys": row["active_keys"] or 0,
            "key_prefix": row["key_prefix"],
            "public_key_prefix": row["public_key_prefix"],
        }
        for row in rows
    ]


def rotate_key(
    db: Database, app_id: UUID, now: datetime, grace: timedelta = timedelta(0), kind: str = rules.SECRET
) -> dict[str, Any]:
    """Issue a new key of this kind; every earlier one of the app stops working after ``grace``,
    the time it takes to deploy the new one."""
    key = rules.new_key(kind)
    ends = now + grace
    with db.write() as conn:
        if not repository.app_exists(conn, app_id):
            raise AppNotFound(str(app_id))
        revoked = repository.revoke_keys(conn, app_id, kind, ends)
        repository.insert_key(conn, app_id, key, kind, now)
    return {
        "app_id": str(app_id),
        f"{kind}_api_key": key,
        "revoked_keys": revoked,
        "earlier_keys_work_until": format_datetime(ends),
    }


def keys_in_force(db: Database, app_id: UUID, now: datetime) -> list[dict[str, Any]]:
    """The app's keys that work now: each one's kind, prefix, when it was issued and, for one
    rotated with a grace, until when it works."""
    with db.read() as conn:
        rows = repository.keys_in_force(conn, app_id, now)
    return [
        {
            "kind": row["kind"],
            "prefix": row["key_prefix"],
            "created_at": format_datetime(row["created_at"]),
            "works_until": format_datetime(row["revoked_at"]) if row["revoked_at"] else None,
        }
        for row in rows
    ]


UNLIMITED = 0  # configure(rate_limit=UNLIMITED) removes the limit


OFF = 0  # configure(trial_active_after_days=OFF, ...) stops the "still active" event
STILL_ACTIVE_DAYS = range(1, 91)  # the reference's delays: 1 to 90 days


def configure(
    db: Database,
    app_id: UUID,
    small_business: bool | None = None,
    tax_rate: Decimal | None = None,
    rate_limit: int | None = None,
    trial_active_after_days: int | None = None,
    subscription_active_after_days: int | None = None,
) -> dict[str, Any]:
    """Set the app's revenue settings, rate limit and "still active" events; None leaves a
    setting as it is (ValueError for a delay out of range)."""
    delays = {
        "trial_active_after_days": trial_active_after_days,
        "subscription_active_after_days": subscription_active_after_days,
    }
    for name, days in delays.items():
        if days not in (None, OFF) and days not in STILL_ACTIVE_DAYS:
            raise ValueError(f"{name} takes 1 to 90 days (0: off)")
    with db.write() as conn:
        if not repository.app_exists(conn, app_id):
            raise AppNotFound(str(app_id))
        given = {"small_business": small_business, "tax_rate": tax_rate, "rate_limit": rate_limit, **delays}
        changes: dict[str, Any] = {key: value for key, value in given.items() if value is not None}
        if rate_limit == UNLIMITED:
            changes["rate_limit"] = None
        for name, days in delays.items():
            if days == OFF:
                changes[name] = None
        if changes:
            repository.update_app(conn, app_id, changes)
        row = repository.find_app(conn, app_id)
    return {
        "app_id": str(app_id),
        "small_business": row["small_business"],
        "tax_rate": str(row["tax_rate"]),
        "rate_limit": row["rate_limit"],
        **{name: row[name] for name in delays},
    }


def app_name(db: Database, app_id: UUID) -> str | None:
    """The app's name; None when there is no such app."""
    with db.read() as conn:
        return repository.find_app(conn, app_id)["name"] if repository.app_exists(conn, app_id) else None


def app_exists(db: Database, app_id: UUID) -> bool:
    with db.read() as conn:
        return repository.app_exists(conn, app_id)


@dataclass(frozen=True)
class Key:
    """What an API key is: the app it opens, the app's rate limit, and its kind (``rules.SECRET``
    for the server-side APIs, ``rules.PUBLIC`` for the Web API)."""

    app_id: UUID
    rate_limit: int | None
    kind: str


class Authenticator:
    """Maps an ``Authorization`` header to the key it carries.

    Known keys are remembered for ``ttl_seconds`` so the hot path does not ask
    the database on every request; a revoked key therefore keeps working for
    at most that long in processes that have just seen it.
    """

    def __init__(self, db: Database, clock: Clock, ttl_seconds: float):
        self._db = db
        self._clock = clock
        self._ttl = timedelta(seconds=ttl_seconds)
        self._known: dict[str, tuple[Key, datetime]] = {}
        self._lock = threading.Lock()

    def cached(self, header: str | None) -> Key | None:
        """The key in the header, seen within the TTL, without I/O; None when unknown."""
        key_hash = rules.hash_secret(rules.secret_from_header(header))
        entry = self._known.get(key_hash)
        if entry and entry[1] > self._clock.now():
            return entry[0]
        return None

    def authenticate(self, header: str | None) -> Key:
        """The key in the header; the contract's 401 otherwise."""
        key_hash = rules.hash_secret(rules.secret_from_header(header))
        now = self._clock.now()
        with self._db.read() as conn:
            found = repository.active_key(conn, key_hash, now)
        if found is None or not hmac.compare_digest(found["key_hash"], key_hash):
            raise rules.invalid_key()
        key = Key(found["app_id"], found["rate_limit"], found["kind"])
        # Trusted for the TTL, but not past the key's end.
        trusted_until = min(now + self._ttl, found["revoked_at"] or now + self._ttl)
        with self._lock:
            self._known[key_hash] = (key, trusted_until)
        return key


def web_origins(db: Database, app_id: UUID) -> list[str]:
    """The origins whose pages may call the app's Web API."""
    with db.read() as conn:
        if not repository.app_exists(conn, app_id):
            raise AppNotFound(str(app_id))
        return repository.web_origins(conn, app_id)


def set_web_origins(db: Database, app_id: UUID, origins: list[str]) -> list[str]:
    """Replace the origins whose pages may call the app's Web API (``rules.web_origin``; ValueError
    for one that is not an origin)."""
    kept = sorted({rules.web_origin(origin) for origin in origins})
    with db.write() as conn:
        if not repository.app_exists(conn, app_id):
            raise AppNotFound(str(app_id))
        repository.set_web_origins(conn, app_id, kept)
    return kept


class OriginPolicy:
    """Which origins may call the Web API from a browser, remembered for ``ttl_seconds`` as keys are
    (a change reaches every process within that time)."""

    def __init__(self, db: Database, clock: Clock, ttl_seconds: float):
        self._db = db
        self._clock = clock
        self._ttl = timedelta(seconds=ttl_seconds)
        self._apps: dict[UUID, tuple[frozenset[str], datetime]] = {}
        self._anywhere: dict[str, tuple[bool, datetime]] = {}

    def _fresh(self, cache: dict[Any, tuple[Any, datetime]], key: Any, read: Callable[[], Any]) -> Any:
        entry = cache.get(key)
        now = self._clock.now()
        if entry is None or entry[1] <= now:
            if len(cache) > 10_000:  # origins are what clients send: bound what is kept of them
                cache.clear()
            entry = cache[key] = (read(), now + self._ttl)
        return entry[0]

    def allows(self, app_id: UUID, origin: str) -> bool:
        """Whether the app lets pages of ``origin`` call its Web API (it reads: run it off the loop
        on PostgreSQL)."""
        origins = self._fresh(self._apps, app_id, lambda: frozenset(web_origins(self._db, app_id)))
        return rules.ANY_ORIGIN in origins or origin in origins

    def known(self, origin: str) -> bool:
        """Whether some app lets pages of ``origin`` call its Web API (a preflight names no app)."""

        def read() -> bool:
            with self._db.read() as conn:
                return repository.origin_known(conn, origin)

        known: bool = self._fresh(self._anywhere, origin, read)
        return known


class RateLimits:
    """Each app's rate limit, counted across every server process of the database.

    An app's token bucket is a row of the database (``buckets.take``). A process leases
    a tenth of a second's worth of requests from it at a time, with one write, and
    spends them from memory; when the bucket is empty, the process remembers it until
    the Retry-After has passed, so that refused requests cost the database nothing.
    Requests a process leased and has not spent are not the others' to take: an app
    whose traffic is spread thin over many processes gets a little less than its rate,
    and a burst after a quiet spell at most one lease per process more than twice it.
    """

    def __init__(self, db: Database, clock: Clock, buckets: Table = rate_buckets, burst_seconds: float = 2.0):
        self._db = db
        self._clock = clock
        self._buckets = buckets  # the table of the buckets
        self._burst_seconds = burst_seconds  # a bucket holds this many seconds' worth of requests
        self._state = threading.Lock()  # never held across I/O: the event loop takes it
        self._leased: dict[UUID, int] = {}  # requests leased and not yet spent
        self._empty_until: dict[UUID, float] = {}
        self._leasing: dict[UUID, threading.Lock] = {}

    def admit(self, app_id: UUID) -> bool:
        """Spend one request of the app's rate from what this process holds, without I/O.
        False when it holds none and must ``lease`` more; the contract's 429 while the
        app's bucket is known to be empty."""
        with self._state:
            if self._leased.get(app_id, 0) > 0:
                self._leased[app_id] -= 1
                return True
            wait = self._empty_until.get(app_id, 0.0) - self._clock.now().timestamp()
        if wait > 0:
            raise rules.throttled(wait)
        return False

    async def take(self, runtime: Runtime, app_id: UUID, rate_limit: float | None) -> None:
        """Spend one of the app's requests (``rate_limit`` a second; None: no limit): from what this
        process holds, else from a lease taken in one of the runtime's threads; the contract's 429
        when the bucket is empty."""
        if rate_limit is not None and not self.admit(app_id):
            await runtime.write(self.lease, app_id, rate_limit)

    def lease(self, app_id: UUID, rate_limit: float) -> None:
        """Lease requests from the app's bucket and spend one (it writes: run it in a thread);
        the contract's 429 when the bucket is empty."""
        with self._state:
            leasing = self._leasing.setdefault(app_id, threading.Lock())
        with leasing:  # one lease at a time: the requests of a burst wait for it, not ask again
            if self.admit(app_id):  # leased by another thread meanwhile
                return
            now = self._clock.now().timestamp()
            with self._db.write(request_work=False) as conn:
                full_at = repository.locked_bucket(conn, self._buckets, app_id)
                burst = self._burst_seconds * rate_limit
                granted, full_at, wait = buckets.take(full_at, now, rate_limit, burst, rules.lease_size(rate_limit))
                if granted:
                    repository.save_bucket(conn, self._buckets, app_id, full_at)
            with self._state:
                if granted:
                    self._leased[app_id] = self._leased.get(app_id, 0) + granted - 1
                else:
                    self._empty_until[app_id] = now + wait
        if not granted:
            raise rules.throttled(wait)
