"""Dashboard use cases: operators, sign-in sessions, and the views' data."""

import hashlib
import hmac
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any
from uuid import UUID, uuid4

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from subledger.analytics import service as analytics_service
from subledger.core.addressing import ProfileRef
from subledger.core.errors import ApiError
from subledger.core.runtime import Runtime
from subledger.dashboard import charts, repository
from subledger.events import service as events_service
from subledger.profiles import service as profiles_service

SESSION_LIFETIME = timedelta(hours=12)
MIN_PASSWORD = 12
_hasher = PasswordHasher()


@cache
def _decoy_hash() -> str:
    """Verified against when the email is unknown, so a wrong email takes as long as a wrong password."""
    return _hasher.hash(secrets.token_urlsafe(16))


class SignInThrottle:
    """Failed sign-ins per (email, address): past ``limit`` within ``window``, more attempts
    are refused without a password check until the oldest failure ages out. Per process."""

    def __init__(self, limit: int = 5, window: timedelta = timedelta(minutes=15)):
        self.limit = limit
        self.window = window
        self._failures: dict[tuple[str, str], list[datetime]] = {}
        self._lock = threading.Lock()

    def wait(self, key: tuple[str, str], now: datetime) -> timedelta | None:
        """How long ``key`` must wait before trying again; None when it may try now."""
        with self._lock:
            recent = [at for at in self._failures.get(key, []) if at > now - self.window]
            self._failures[key] = recent
            if len(recent) < self.limit:
                return None
            return recent[0] + self.window - now

    def failed(self, key: tuple[str, str], now: datetime) -> None:
        with self._lock:
            self._failures.setdefault(key, []).append(now)

    def succeeded(self, key: tuple[str, str]) -> None:
        with self._lock:
            self._failures.pop(key, None)


class OperatorExists(ValueError):
    pass


def create_operator(rt: Runtime, email: str, password: str) -> dict[str, Any]:
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"the password needs at least {MIN_PASSWORD} characters")
    email = email.strip().lower()
    with rt.db.write() as conn:
        if repository.find_operator(conn, email) is not None:
            raise OperatorExists(email)
        repository.insert_operator(
            conn, {"id": uuid4(), "email": email, "password_hash": _hasher.hash(password), "created_at": rt.clock.now()}
        )
    return {"email": email}


def list_operators(rt: Runtime) -> list[dict[str, Any]]:
    with rt.db.read() as conn:
        return [
            {"email": row["email"], "created_at": row["created_at"].isoformat()}
            for row in repository.list_operators(conn)
        ]


def delete_operator(rt: Runtime, email: str) -> bool:
    with rt.db.write() as conn:
        return repository.delete_operator(conn, email.strip().lower()) > 0


@dataclass(frozen=True)
class Session:
    email: str
    csrf_token: str


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def sign_in(rt: Runtime, email: str, password: str) -> str | None:
    """A new session token for the right email and password; None otherwise."""
    with rt.db.read() as conn:
        operator = repository.find_operator(conn, email.strip().lower())
    try:
        _hasher.verify(operator["password_hash"] if operator else _decoy_hash(), password)
    except (VerificationError, InvalidHashError):
        return None
    if operator is None:
        return None
    token = secrets.token_urlsafe(32)
    now = rt.clock.now()
    with rt.db.write() as conn:
        repository.delete_expired_sessions(conn, now)
        repository.insert_session(
            conn,
            {
                "token_hash": _token_hash(token),
                "operator_id": operator["id"],
                "csrf_token": secrets.token_urlsafe(32),
                "created_at": now,
                "expires_at": now + SESSION_LIFETIME,
            },
        )
    return token


def session(rt: Runtime, token: str | None) -> Session | None:
    if not token:
        return None
    with rt.db.read() as conn:
        row = repository.find_session(conn, _token_hash(token), rt.clock.now())
    return Session(row["email"], row["csrf_token"]) if row else None


def sign_out(rt: Runtime, token: str) -> None:
    with rt.db.write() as conn:
        repository.delete_session(conn, _token_hash(token))


def csrf_ok(expected: str, sent: str | None) -> bool:
    return bool(sent) and hmac.compare_digest(expected.encode(), sent.encode())


# What the pages show -----------------------------------------------------------------

CHARTED = (
    ("net_usd", "Net revenue (USD)"),
    ("mrr_usd", "MRR (USD)"),
    ("active_subscriptions", "Active subscriptions"),
    ("active_trials", "Active trials"),
    ("new_subscriptions", "New subscriptions"),
    ("churned_subscriptions", "Churned subscriptions"),
)


def overview(rt: Runtime, app_id: UUID, query: analytics_service.MetricsQuery) -> dict[str, Any]:
    result = analytics_service.metrics(rt, app_id, query)
    labels = [row["date"][5:] if query.period != "month" else row["date"][:7] for row in result["data"]]
    result["charts"] = [
        charts.line_chart(title, labels, [row[name] for row in result["data"]]) for name, title in CHARTED
    ]
    return result


def search_profiles(rt: Runtime, app_id: UUID, text: str, limit: int = 20) -> list[dict[str, Any]]:
    """Profiles whose customer_user_id or profile_id is ``text``, or that hold a transaction with that id."""
    text = text.strip()
    if not text:
        return []
    found: dict[UUID, dict[str, Any]] = {}
    refs = [ProfileRef(customer_user_id=text)]
    try:
        refs.append(ProfileRef(profile_id=UUID(text)))
    except ValueError:
        pass
    for ref in refs:
        try:
            profile, _ = profiles_service.record(rt, app_id, ref)
            found[profile["id"]] = profile
        except ApiError:
            continue
    with rt.db.read() as conn:
        holders = repository.profiles_with_transaction(conn, app_id, text, limit)
    for profile_id in holders:
        if profile_id not in found:
            found[profile_id] = profiles_service.record(rt, app_id, ProfileRef(profile_id=profile_id))[0]
    return list(found.values())[:limit]


def profile_page(rt: Runtime, app_id: UUID, profile_id: UUID) -> dict[str, Any]:
    """The profile as the API shows it now, and its event timeline."""
    profile = profiles_service.get_profile(rt, app_id, ProfileRef(profile_id=profile_id))["data"]
    timeline = events_service.feed(rt, app_id, None, 500, profile_id, None, None, None)["data"]
    return {"profile": profile, "events": timeline}
