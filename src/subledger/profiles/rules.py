"""Profile rules: custom attribute merging, ad-id privacy, segment hash. No I/O."""

import hashlib
from datetime import datetime
from typing import Any

import orjson

from subledger.core.dates import format_datetime
from subledger.core.errors import ApiError, bad_request

MAX_CUSTOM_ATTRIBUTES = 30
AD_ID_FIELDS = ("idfa", "idfv", "advertising_id")


def merge_custom_attributes(current: dict[str, Any], changes: list[tuple[str, Any]]) -> dict[str, Any]:
    """Apply ``(key, value)`` changes in order; ``""`` or None deletes the key.

    The limit counts the attributes after the change, so a request may replace
    attributes of a full profile.
    """
    seen: set[str] = set()
    errors = []
    for index, (key, _) in enumerate(changes):
        if key in seen:
            errors.append((f"custom_attributes.{index}.key", [f"Duplicate key `{key}`."]))
        seen.add(key)
    if errors:
        raise ApiError(400, "base_error", errors)

    merged = dict(current)
    for key, value in changes:
        if value is None or value == "":
            merged.pop(key, None)
        else:
            merged[key] = value
    if len(merged) > MAX_CUSTOM_ATTRIBUTES:
        raise bad_request(
            "base_error",
            "custom_attributes",
            f"A profile can have at most {MAX_CUSTOM_ATTRIBUTES} custom attributes; this change makes {len(merged)}.",
        )
    return merged


def installation_values(meta: dict[str, Any], analytics_disabled: bool, platform_header: str | None) -> dict[str, Any]:
    """The columns an installation row gets from an ``installation_meta`` object.

    The ``adapty-platform`` header fills in the platform when the body leaves it out.
    With analytics disabled the advertising identifiers are not stored.
    """
    values = dict(meta)
    if values.get("platform") is None and platform_header:
        values["platform"] = platform_header
    if analytics_disabled:
        values.update(dict.fromkeys(AD_ID_FIELDS))
    return values


def attribution_object(values: dict[str, Any], created_at: datetime) -> dict[str, Any]:
    """An attribution as webhook events carry it (the reference's shape): ``attribution_user_id``
    is the source's ``network_user_id``."""
    return {
        "ad_set": values.get("ad_set"),
        "status": values["status"],
        "channel": values.get("channel"),
        "ad_group": values.get("ad_group"),
        "campaign": values.get("campaign"),
        "creative": values.get("creative"),
        "created_at": format_datetime(created_at),
        "network_user_id": values.get("attribution_user_id"),
    }


def latest_attribution(attribution: dict[str, dict[str, Any]] | None) -> dict[str, Any]:
    """The newest attribution of any source (empty when there is none)."""
    return max((attribution or {}).values(), key=lambda item: item["created_at"], default={})


EMPTY_STATE: dict[str, list[dict[str, Any]]] = {"access_levels": [], "subscriptions": [], "non_subscriptions": []}


def render_state(derived: dict[str, list[dict[str, Any]]] | None, now: str) -> dict[str, list[dict[str, Any]]]:
    """The stored derived purchases as of ``now`` (a response-format date string).

    Stored dates share one fixed UTC format, so they compare as strings. Only
    ``is_in_grace_period`` depends on the moment; the private ``_grace_until``
    of an access level is dropped.
    """
    if not derived:
        return EMPTY_STATE
    levels = []
    for level in derived["access_levels"]:
        rendered = {key: value for key, value in level.items() if key != "_grace_until"}
        rendered["is_in_grace_period"] = level["_grace_until"] is not None and now < level["_grace_until"]
        levels.append(rendered)
    subscriptions = [{**item, "is_in_grace_period": _in_grace(item, now)} for item in derived["subscriptions"]]
    return {"access_levels": levels, "subscriptions": subscriptions, "non_subscriptions": derived["non_subscriptions"]}


def _in_grace(subscription: dict[str, Any], now: str) -> bool:
    grace_end = subscription["grace_period_expires_at"]
    return (
        grace_end is not None
        and subscription["billing_issue_detected_at"] is not None
        and subscription["refunded_at"] is None
        and now < grace_end
    )


def active_access_levels(state: dict[str, list[dict[str, Any]]], now: str) -> list[str]:
    """Ids of the levels active at ``now``: started, and not expired or kept by a grace period."""
    return [
        level["access_level_id"]
        for level in state["access_levels"]
        if level["starts_at"] <= now
        and (level["expires_at"] is None or now < level["expires_at"] or level["is_in_grace_period"])
    ]


def segment_hash(profile: dict[str, Any], active_access_levels: list[str]) -> str:
    """16 hex chars over what segments are built from; any change to it changes the hash."""
    basis = {
        "custom_attributes": profile["custom_attributes"],
        "store": profile["store"],
        "store_country": profile["store_country"],
        "ip_country": profile["ip_country"],
        "access_levels": sorted(active_access_levels),
    }
    return hashlib.blake2b(orjson.dumps(basis, option=orjson.OPT_SORT_KEYS), digest_size=8).hexdigest()
