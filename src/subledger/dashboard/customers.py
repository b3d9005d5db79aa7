"""Which profiles a customers list's filters keep, from what each profile row stores (its
derived access levels and subscriptions). Pure: rows in, verdicts out.

Dates in the derived state share one fixed UTC format, so they compare as strings.
"""

from dataclasses import dataclass
from typing import Any

STATUSES = ("trial", "subscribed", "churned")


@dataclass(frozen=True)
class Filters:
    """What a list asks for; empty: anything."""

    level: str = ""  # an access level active now
    store: str = ""
    country: str = ""  # the store's country, else the one of the IP address (two letters, any case)
    status: str = ""  # one of STATUSES

    @property
    def any(self) -> bool:
        return bool(self.level or self.store or self.country or self.status)


def _active(item: dict[str, Any], now: str) -> bool:
    started = item.get("starts_at") or item.get("purchased_at") or ""
    ends = item.get("expires_at")
    return started <= now and (ends is None or now < ends) and item.get("refunded_at") is None


def _trial(subscription: dict[str, Any]) -> bool:
    return (subscription.get("offer") or {}).get("type") == "free_trial"


def status_of(derived: dict[str, Any] | None, now: str) -> str:
    """Of a profile's subscriptions (each its chain's latest transaction): trial, one active now in a
    free trial; subscribed, one active now; churned, none active now and one that was paid for (not
    a trial, at a price); "" for anyone else."""
    subscriptions = (derived or {}).get("subscriptions", [])
    active = [sub for sub in subscriptions if _active(sub, now)]
    if any(_trial(sub) for sub in active):
        return "trial"
    if active:
        return "subscribed"
    paid = any(sub["price"]["value"] > 0 and not _trial(sub) for sub in subscriptions)
    return "churned" if paid else ""


def active_levels(derived: dict[str, Any] | None, now: str) -> list[str]:
    return [level["access_level_id"] for level in (derived or {}).get("access_levels", []) if _active(level, now)]


def keeps(row: dict[str, Any], filters: Filters, now: str) -> bool:
    """Whether the list keeps this profile row (``derived``, ``store``, ``store_country``, ``ip_country``)."""
    if filters.store and row["store"] != filters.store:
        return False
    country = (row["store_country"] or row["ip_country"] or "").upper()
    if filters.country and country != filters.country.upper():
        return False
    if filters.level and filters.level not in active_levels(row["derived"], now):
        return False
    return not filters.status or status_of(row["derived"], now) == filters.status
