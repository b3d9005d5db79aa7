"""``subledger verify``: every profile's derived state recomputed from its ledger and compared
with what is stored."""

from collections.abc import Iterator
from typing import Any
from uuid import UUID

from subledger.core.runtime import Runtime
from subledger.currencies import service as currencies_service
from subledger.profiles import service as profiles_service
from subledger.purchases import repository, rules, service


def verify(rt: Runtime, app_id: UUID | None = None, fix: bool = False, page: int = 500) -> Iterator[dict[str, Any]]:
    """Recompute every profile's derived state and yield each one that differs from what is stored, or
    whose virtual currency balances differ from their history.

    With ``fix``, the recomputed state replaces the stored one (each profile in
    its own transaction, so a long run does not hold locks).
    """
    after = None
    while True:
        with rt.db.read() as conn:
            ids = repository.profile_ids(conn, app_id, after, page)
        if not ids:
            return
        for profile_app, profile_id in ids:
            with rt.db.write() as conn:
                profile = profiles_service.find_locked(conn, profile_app, profile_id)
                if profile is None:
                    continue  # deleted since the page was read
                derived = service.derive(conn, profile_app, profile_id)
                stored = (profile["derived"] or rules.Derived().stored(), profile["total_revenue_usd"])
                if stored != (derived.stored(), derived.total_revenue_usd):
                    if fix:
                        service.recompute(rt, conn, profile, rt.clock.now())
                    yield {"app_id": str(profile_app), "profile_id": str(profile_id), "fixed": fix}
                if currencies_service.unbalanced(conn, profile_id, fix):
                    yield {
                        "app_id": str(profile_app),
                        "profile_id": str(profile_id),
                        "balances": "differ",
                        "fixed": fix,
                    }
        after = ids[-1][1]
