"""Profile rules: custom attribute merging, ad-id privacy, segment hash. No I/O."""

import hashlib
from typing import Any

import orjson

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
