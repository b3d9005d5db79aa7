"""Dashboard use cases: operators, sign-in sessions, and the views' data."""

import hashlib
import hmac
import secrets
import threading
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from functools import cache
from typing import Any
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from subledger.analytics import service as analytics_service
from subledger.client_api import service as client_api_service
from subledger.client_api.schemas import MetricsRequest
from subledger.core import buckets
from subledger.core.dates import EARLIEST_DAY, format_datetime
from subledger.core.errors import ApiError
from subledger.core.profile_ref import ProfileRef
from subledger.core.runtime import Runtime
from subledger.currencies import service as currencies_service
from subledger.dashboard import charts, customers, repository
from subledger.events import service as events_service
from subledger.paywalls import service as paywalls_service
from subledger.profiles import service as profiles_service
from subledger.purchases import service as purchases_service
from subledger.stores import service as stores_service

SESSION_LIFETIME = timedelta(hours=12)
MIN_PASSWORD = 12
# Sign-in attempts of one email from one address: 5 at once, then one every 3 minutes.
SIGN_IN_BURST = 5
SIGN_IN_RATE = SIGN_IN_BURST / timedelta(minutes=15).total_seconds()
# And of any emails from one address, so that new emails do not get more: 20 at once, then one
# every 45 seconds. (The bucket's email is empty: no operator's is.)
ADDRESS_BURST = 20
ADDRESS_RATE = ADDRESS_BURST / timedelta(minutes=15).total_seconds()
ANY_EMAIL = ""
# Password checks at once in a server process. Each takes argon2's 64 MiB and, in four lanes of
# its own, the machine's cores for tens of milliseconds; more are answered 429 at once rather than
# queued, so that a flood of sign-ins can take neither the memory nor the threads the API needs
# (bench/sign_in_flood.py: with two at once, a flood added more to the API's p99 than one does).
VERIFYING = 1
_hasher = PasswordHasher()
_verifying = threading.BoundedSemaphore(VERIFYING)


@cache
def _decoy_hash() -> str:
    """Verified against when the email is unknown, so a wrong email takes as long as a wrong password."""
    return _hasher.hash(secrets.token_urlsafe(16))


class TooManySignIns(Exception):
    """The email and address must wait ``seconds`` before trying again."""

    def __init__(self, seconds: float):
        super().__init__(seconds)
        self.seconds = seconds


class OperatorExists(ValueError):
    pass


# What an operator may do: an owner everything, an analyst read every page and change nothing.
OWNER, ANALYST = "owner", "analyst"
ROLES = (OWNER, ANALYST)


def _checked_role(role: str) -> str:
    if role not in ROLES:
        raise ValueError(f"a role is one of {', '.join(ROLES)}")
    return role


def create_operator(rt: Runtime, email: str, password: str, role: str = OWNER) -> dict[str, Any]:
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"the password needs at least {MIN_PASSWORD} characters")
    email = email.strip().lower()
    if not email or len(email) > 255:
        raise ValueError("an email is 1 to 255 characters long")
    values = {"id": uuid4(), "email": email, "role": _checked_role(role), "created_at": rt.clock.now()}
    with rt.db.write() as conn:
        if repository.find_operator(conn, email) is not None:
            raise OperatorExists(email)
        repository.insert_operator(conn, {**values, "password_hash": _hasher.hash(password)})
    return {"email": email, "role": role}


def set_role(rt: Runtime, email: str, role: str) -> bool:
    """Give the operator another role (their sessions have it at their next request): whether there is one."""
    with rt.db.write() as conn:
        return repository.set_role(conn, email.strip().lower(), _checked_role(role)) > 0


def list_operators(rt: Runtime) -> list[dict[str, Any]]:
    with rt.db.read() as conn:
        return [
            {"email": row["email"], "role": row["role"], "created_at": row["created_at"].isoformat()}
            for row in repository.list_operators(conn)
        ]


def delete_operator(rt: Runtime, email: str) -> bool:
    with rt.db.write() as conn:
        return repository.delete_operator(conn, email.strip().lower()) > 0


@dataclass(frozen=True)
class Session:
    email: str
    csrf_token: str
    role: str = OWNER

    @property
    def may_change(self) -> bool:
        return self.role == OWNER


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def take_attempt(rt: Runtime, email: str, address: str) -> dict[str, Any] | None:
    """Count a sign-in attempt: the operator of ``email`` (None for none), once the attempt is
    taken from the token bucket of the email and address, and from the address's own.

    Attempts made at once cannot all pass before one fails, and every server process counts
    against the same buckets, in the database. Raises TooManySignIns while one is empty."""
    email = email.strip().lower()
    now = rt.clock.now().timestamp()
    with rt.db.write() as conn:
        # The address's bucket first, always: two attempts lock the two rows in the same order.
        taken = [
            (key, *buckets.take(repository.locked_sign_in_bucket(conn, key, address), now, rate, burst, 1))
            for key, rate, burst in ((ANY_EMAIL, ADDRESS_RATE, ADDRESS_BURST), (email, SIGN_IN_RATE, SIGN_IN_BURST))
        ]
        granted = all(ok for _key, ok, _full_at, _wait in taken)
        if granted:
            for key, _ok, full_at, _wait in taken:
                repository.save_sign_in_bucket(conn, key, address, full_at)
            operator = repository.find_operator(conn, email)
    # In a transaction of its own: one that held a bucket's row while deleting others
    # could wait for another attempt doing the same the other way round.
    with rt.db.write() as conn:
        repository.delete_full_sign_in_buckets(conn, now)
    if not granted:
        raise TooManySignIns(max(wait for _key, ok, _full_at, wait in taken if not ok))
    return operator


def reserve_check() -> bool:
    """Take one of the process's ``VERIFYING`` password checks, without waiting: False when
    all are taken. ``password_matches`` gives it back."""
    return _verifying.acquire(blocking=False)


def release_check() -> None:
    """Give back a check ``reserve_check`` took, for an attempt that will not be checked."""
    _verifying.release()


def password_matches(operator: dict[str, Any] | None, password: str) -> bool:
    """Whether ``password`` is the operator's, in a check ``reserve_check`` reserved; without
    an operator a decoy is checked, so a wrong email takes as long as a wrong password."""
    try:
        _hasher.verify(operator["password_hash"] if operator else _decoy_hash(), password)
    except (VerificationError, InvalidHashError):
        return False
    finally:
        release_check()
    return operator is not None


def open_session(rt: Runtime, operator: dict[str, Any], address: str) -> str:
    """A new session of the operator who signed in; their bucket for this address is full again."""
    token = secrets.token_urlsafe(32)
    signed_in_at = rt.clock.now()
    with rt.db.write() as conn:
        repository.delete_sign_in_bucket(conn, operator["email"], address)
        repository.delete_expired_sessions(conn, signed_in_at)
        repository.insert_session(
            conn,
            {
                "token_hash": _token_hash(token),
                "operator_id": operator["id"],
                "csrf_token": secrets.token_urlsafe(32),
                "created_at": signed_in_at,
                "expires_at": signed_in_at + SESSION_LIFETIME,
            },
        )
    return token


def session(rt: Runtime, token: str | None) -> Session | None:
    if not token:
        return None
    with rt.db.read() as conn:
        row = repository.find_session(conn, _token_hash(token), rt.clock.now())
    return Session(row["email"], row["csrf_token"], row["role"]) if row else None


def sign_out(rt: Runtime, token: str) -> None:
    with rt.db.write() as conn:
        repository.delete_session(conn, _token_hash(token))


# Form fields the trail of operators' actions leaves out: tokens and secrets.
_UNRECORDED = ("csrf", "password", "secret", "key", "authorization", "token")


def record_action(
    rt: Runtime, session: Session, app_id: UUID, action: str, path: str, status: int, form: dict[str, str]
) -> None:
    """Add a form an operator posted, and how it was answered, to the app's trail."""
    details = {name: value[:200] for name, value in form.items() if not any(word in name for word in _UNRECORDED)}
    values = {"at": rt.clock.now(), "operator_email": session.email, "action": action[:255], "path": path[:1024]}
    with rt.db.write() as conn:
        repository.insert_action(conn, {**values, "app_id": app_id, "status": status, "details": details})


def actions(rt: Runtime, app_id: UUID, limit: int = 200) -> list[dict[str, Any]]:
    """The app's trail, newest first."""
    with rt.db.lagging_read() as conn:
        return repository.actions(conn, app_id, limit)


def csrf_ok(expected: str, sent: str | None) -> bool:
    return sent is not None and sent != "" and hmac.compare_digest(expected.encode(), sent.encode())


# What the pages show -----------------------------------------------------------------

CHARTED = (
    ("net_usd", "Net revenue (USD)"),
    ("mrr_usd", "MRR (USD)"),
    ("active_subscriptions", "Active subscriptions"),
    ("active_trials", "Active trials"),
    ("new_subscriptions", "New subscriptions"),
    ("churned_subscriptions", "Churned subscriptions"),
)


# The tiles: a level read at the window's end, or a flow summed over it; each with its change
# against the window of the same length just before.
TILES = (
    ("MRR", "mrr_usd", "last", True),
    ("Active subscriptions", "active_subscriptions", "last", False),
    ("Active trials", "active_trials", "last", False),
    ("Net revenue", "net_usd", "sum", True),
    ("New subscriptions", "new_subscriptions", "sum", False),
    ("Churned subscriptions", "churned_subscriptions", "sum", False),
)


def _tile_value(rows: list[dict[str, Any]], name: str, how: str) -> float:
    return float(rows[-1][name] if how == "last" else sum(row[name] for row in rows))


def overview(rt: Runtime, app_id: UUID, query: analytics_service.MetricsQuery) -> dict[str, Any]:
    """The metrics of the window asked for, its charts, and its tiles against the window before."""
    result = analytics_service.metrics(rt, app_id, query)
    labels = [row["date"][5:] if query.period != "month" else row["date"][:7] for row in result["data"]]
    result["charts"] = [
        charts.line_chart(
            title, labels, [row[name] for row in result["data"]], charts.money if "USD" in title else charts.count
        )
        for name, title in CHARTED
    ]
    start, end = date.fromisoformat(result["start"]), date.fromisoformat(result["end"])
    before_end = start - timedelta(days=1)
    before_start = before_end - (end - start)
    previous = None
    if before_start >= EARLIEST_DAY:
        previous = analytics_service.metrics(rt, app_id, replace(query, start=before_start, end=before_end))["data"]
    tiles = []
    for title, name, how, in_money in TILES:
        value = _tile_value(result["data"], name, how)
        before = _tile_value(previous, name, how) if previous else None
        change = None if not before else round((value - before) / abs(before) * 100, 1)
        tiles.append(
            {"title": title, "value": charts.money(value) if in_money else charts.count(value), "change": change}
        )
    result["tiles"] = tiles
    with rt.db.lagging_read() as conn:
        result["has_ledger"] = repository.any_transaction(conn, app_id)
    return result


# A customers list shows this many profiles a page, and reads at most CUSTOMERS_SCAN of them to
# fill one: its filters are checked on each profile's stored state, which no index holds, so a
# page of a rare filter shows what those held and offers to look further (``next``).
CUSTOMERS_PAGE = 50
CUSTOMERS_SCAN = 5000
_CUSTOMERS_BATCH = 500


def _cursor(text: str) -> tuple[datetime, UUID] | None:
    """A list's place (``created_at~id`` of the last profile read); None for the newest."""
    if not text:
        return None
    created, _, profile_id = text.partition("~")
    try:
        return datetime.fromisoformat(created), UUID(profile_id)
    except ValueError:
        raise ApiError.one(400, "value_error", "after", "Not a place in the list: start from its first page.") from None


def customers_page(rt: Runtime, app_id: UUID, filters: customers.Filters, after: str = "") -> dict[str, Any]:
    """The app's profiles newest first that the filters keep, a page of them from ``after``: each
    with its active access levels and status; ``next`` where the next page starts (None at the
    end) and how many profiles were read."""
    before = _cursor(after)
    now = format_datetime(rt.clock.now())
    kept: list[dict[str, Any]] = []
    read, last, ended = 0, None, False
    with rt.db.lagging_read() as conn:
        while len(kept) < CUSTOMERS_PAGE and read < CUSTOMERS_SCAN and not ended:
            batch = repository.newest_profiles(conn, app_id, before, _CUSTOMERS_BATCH)
            ended = len(batch) < _CUSTOMERS_BATCH
            for row in batch:
                read, last = read + 1, row
                if customers.keeps(row, filters, now):
                    levels = customers.active_levels(row["derived"], now)
                    kept.append({**row, "levels": levels, "status": customers.status_of(row["derived"], now)})
                    if len(kept) == CUSTOMERS_PAGE:
                        ended = ended and row is batch[-1]
                        break
            if last is not None:
                before = (last["created_at"], last["id"])
    following = None if ended or last is None else f"{last['created_at'].isoformat()}~{last['id']}"
    return {"rows": kept, "next": following, "read": read, "full": len(kept) == CUSTOMERS_PAGE}


def search_profiles(rt: Runtime, app_id: UUID, text: str, limit: int = CUSTOMERS_PAGE) -> list[dict[str, Any]]:
    """Profiles whose profile_id is ``text``, that hold a transaction with that id, or whose
    customer_user_id or email starts with it (an email also as typed in lower case): in that order,
    each kind sorted, the first ``limit``."""
    text = text.strip()
    if not text:
        return []
    found: dict[UUID, None] = {}  # the ids in order, once each
    with rt.db.lagging_read() as conn:
        try:
            found[UUID(text)] = None
        except ValueError:
            pass
        found.update(dict.fromkeys(repository.profiles_with_transaction(conn, app_id, text, limit)))
        for column, prefix in (("customer_user_id", text), ("email", text), ("email", text.lower())):
            found.update(dict.fromkeys(repository.profiles_starting_with(conn, app_id, column, prefix, limit)))
        return repository.listed_profiles(conn, app_id, list(found)[:limit])


def profile_page(rt: Runtime, app_id: UUID, profile_id: UUID) -> dict[str, Any]:
    """The profile as the API shows it now, what else is stored of it (personal fields, its
    latest device), its virtual currency balances and latest transactions, and its event timeline."""
    ref = ProfileRef(profile_id=profile_id)
    profile = profiles_service.get_profile(rt, app_id, ref)["data"]
    stored, device = profiles_service.record(rt, app_id, ref)
    active = customers.active_levels(stored["derived"], format_datetime(rt.clock.now()))
    for level in profile["access_levels"]:  # the badge beside each: active now, or expired
        level["is_active"] = level["access_level_id"] in active
    timeline = events_service.feed(rt, app_id, None, 500, profile_id, None, None, None)["data"]
    currencies = currencies_service.wallet(rt, app_id, profile_id)
    ledger = purchases_service.ledger_of(rt, profile_id)  # the profile is the app's: found above
    return {
        "profile": profile,
        "stored": stored,
        "device": device,
        "events": timeline,
        "currencies": currencies,
        "ledger": ledger,
    }


def store_activity(rt: Runtime, app_id: UUID, stores: list[str]) -> dict[str, dict[str, Any]]:
    """For each of these stores, the last notification it sent the app (its kind, status and when)
    and the last request to its notification URL that failed verification (why, and when)."""
    refused = [stores_service.refused_out(row) for row in stores_service.list_refused(rt, app_id, 1000)]
    activity = {}
    for store in stores:
        last = stores_service.list_notifications(rt, app_id, store, None, 1)
        activity[store] = {
            "notification": stores_service.notification_out(last[0]) if last else None,
            "refused": next((row for row in refused if row["store"] == store), None),
        }
    return activity


def paywalls_page(rt: Runtime, app_id: UUID) -> dict[str, Any]:
    """The app's paywalls with their figures when shown outside A/B tests, its placements with
    each target's audience and what it shows named, its audiences, and its A/B tests with each
    variation's figures and significance."""
    paywalls = paywalls_service.list_paywalls_admin(rt, app_id)
    rows, tests = paywalls_service.metrics_and_experiments(rt, app_id)
    alone = {row["variation_id"]: row for row in rows if not row["ab_test_name"]}
    titles = {paywall["paywall_id"]: paywall["title"] for paywall in paywalls}
    test_names = {test["ab_test_id"]: test["name"] for test in tests}

    def shown(target: dict[str, Any]) -> str:
        if target.get("ab_test_id"):
            return f"A/B test {test_names.get(str(target['ab_test_id']), target['ab_test_id'])}"
        return str(titles.get(str(target["paywall_id"]), target["paywall_id"]))

    placements = [
        {
            "placement_id": placement["placement_id"],
            "targets": [
                {"audience": target.get("audience_id") or paywalls_service.EVERYONE, "shows": shown(target)}
                for target in placement["targets"]
            ],
        }
        for placement in paywalls_service.list_placements(rt, app_id)
    ]
    for test in tests:
        for variation in test["variations"]:
            variation["title"] = titles.get(variation["paywall_id"], variation["paywall_id"])
    return {
        "paywalls": [{**paywall, "figures": alone.get(paywall["variation_id"])} for paywall in paywalls],
        "placements": placements,
        "audiences": paywalls_service.list_audiences(rt, app_id),
        "tests": tests,
    }


def journeys(rt: Runtime, app_id: UUID, start: date, end: date) -> dict[str, Any]:
    """The funnel, subscription retention, LTV and three conversions of a window, in UTC."""
    window = MetricsRequest.model_validate({"filters": {"date": [start.isoformat(), end.isoformat()]}})
    conversions: list[tuple[str | None, str]] = [(None, "1"), ("trial", "1"), ("1", "2")]
    return client_api_service.journeys_of(rt, app_id, window, ZoneInfo("UTC"), conversions)
