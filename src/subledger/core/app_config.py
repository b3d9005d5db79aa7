"""An app's configuration, kept in each server process between requests.

Every write reads what it needs of its app's configuration: the product catalog,
access levels, exchange rates, revenue settings, webhook endpoints. It rarely
changes, so each process keeps what it read, under the app's ``config_version``.
Every change to the configuration moves that version on in the transaction that
makes it (``changed``); a transaction reads the version once (one small query
instead of one per part) and takes from the cache only what was read under it.

Why a cached value is never older than the version it is filed under: the version
is read before the value, and a transaction sees the commits of at least the
moment it read the version. A value may be newer than its version (a change committed
in between); it is then re-read by the first transaction that sees the new version.
A transaction that changed the configuration itself reads around the cache: its
change may yet roll back.
"""

import weakref
from collections.abc import Callable
from typing import TypeVar
from uuid import UUID

from sqlalchemy import Connection, Engine, RootTransaction, bindparam, select, update

from subledger.core.tables import apps

T = TypeVar("T")

_VERSION = select(apps.c.config_version).where(apps.c.id == bindparam("app_id"))
_BUMP_ONE = update(apps).where(apps.c.id == bindparam("app_key")).values(config_version=apps.c.config_version + 1)
_BUMP_ALL = update(apps).values(config_version=apps.c.config_version + 1)

# (part, app_id) -> (version, value), per database: tests and tools open several in one process.
_caches: "weakref.WeakKeyDictionary[Engine, dict[tuple[str, UUID], tuple[int, object]]]" = weakref.WeakKeyDictionary()


class _Seen:
    """What one transaction has read of app versions, and whether it changed any."""

    def __init__(self, transaction: RootTransaction | None):
        self.transaction = transaction
        self.versions: dict[UUID, int | None] = {}
        self.changed_all = False


def _seen(conn: Connection) -> _Seen:
    """This transaction's record, kept with the pooled connection while the transaction lasts."""
    transaction = conn.get_transaction()
    seen = conn.info.get("app_config")
    if transaction is None or seen is None or seen.transaction is not transaction:
        seen = _Seen(transaction)
        if transaction is not None:
            conn.info["app_config"] = seen
    return seen


def _version(conn: Connection, app_id: UUID) -> int | None:
    """The app's configuration version as this transaction sees it; None once the
    transaction changed it (or when there is no such app)."""
    seen = _seen(conn)
    if seen.changed_all:
        return None
    if app_id not in seen.versions:
        seen.versions[app_id] = conn.execute(_VERSION, {"app_id": app_id}).scalar()
    return seen.versions[app_id]


def saw(conn: Connection, app_id: UUID, version: int) -> None:
    """Note the app's configuration version that a statement of this transaction read
    along with other rows (the locking read of a profile does), saving a query."""
    _seen(conn).versions.setdefault(app_id, version)


def cached(conn: Connection, app_id: UUID, part: str, load: Callable[[], T]) -> T:
    """``load()``'s value for this app, from the cache when it was read under the
    version this transaction sees. Values are shared: callers must not change them."""
    version = _version(conn, app_id)
    if version is None:
        return load()
    cache = _caches.setdefault(conn.engine, {})
    key = (part, app_id)
    entry = cache.get(key)
    if entry is not None and entry[0] == version:
        return entry[1]  # type: ignore[return-value]
    value = load()
    cache[key] = (version, value)
    return value


def changed(conn: Connection, app_id: UUID | None = None) -> None:
    """Move the app's configuration version on (every app's when ``app_id`` is None),
    in the caller's transaction, so that every process reads its configuration afresh."""
    if app_id is None:
        conn.execute(_BUMP_ALL)
        _seen(conn).changed_all = True
    else:
        conn.execute(_BUMP_ONE, {"app_key": app_id})
        _seen(conn).versions[app_id] = None
