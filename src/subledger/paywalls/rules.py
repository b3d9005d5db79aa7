"""Paywall rules: audiences, the choice of a placement's paywall, stable A/B
assignment, remote config locales and significance. Pure: no I/O."""

import hashlib
import math
from typing import Any

from subledger.catalog.rules import LIFETIME

# Audience rule fields: a profile property, "custom_attribute.<key>", "attribution.<field>" (of
# its latest attribution), or "access_level".
PROFILE_FIELDS = {"store", "ip_country", "store_country", "platform"}
ATTRIBUTION_FIELDS = {"status", "channel", "campaign", "ad_group", "ad_set", "creative", "network_user_id"}
OPERATORS = {"eq", "ne", "in", "not_in", "exists", "not_exists", "gt", "lt", "has", "has_not"}
NUMERIC = {"gt", "lt"}

# A paywall's state: a new one is a draft; it is live while a placement shows it (itself or
# through an A/B test), and inactive once none does; an archived one no placement may show.
DRAFT, LIVE, INACTIVE, ARCHIVED = "draft", "live", "inactive", "archived"

# The contract's product sets, by subscription period.
_PRODUCT_SETS = {
    "P7D": "weekly",
    "P1W": "weekly",
    "P1M": "monthly",
    "P2M": "two_months",
    "P3M": "trimonthly",
    "P6M": "semiannual",
    "P12M": "annual",
    "P1Y": "annual",
}


def product_set(period: str, is_consumable: bool) -> str:
    if is_consumable:
        return "consumable"
    if period == LIFETIME:
        return "lifetime"
    return _PRODUCT_SETS.get(period, "uncategorised")


def states_after_placing(states: dict[str, str], shown: set[str]) -> dict[str, str]:
    """The paywalls whose state moves once placements show ``shown``: {paywall_id: new state}."""
    moved = {}
    for paywall_id, state in states.items():
        if paywall_id in shown and state in (DRAFT, INACTIVE):
            moved[paywall_id] = LIVE
        elif paywall_id not in shown and state == LIVE:
            moved[paywall_id] = INACTIVE
    return moved


def _value_of(field: str, facts: dict[str, Any]) -> Any:
    if field.startswith("custom_attribute."):
        return facts["custom_attributes"].get(field.removeprefix("custom_attribute."))
    if field.startswith("attribution."):
        return facts["attribution"].get(field.removeprefix("attribution."))
    return facts.get(field)


def rule_matches(rule: dict[str, Any], facts: dict[str, Any]) -> bool:
    """One rule against a profile's facts (properties, attributes, active access levels)."""
    op: str = rule["op"]
    expected: Any = rule.get("value")  # of the type the rule's schema checked for its op
    if rule["field"] == "access_level":
        has = expected in facts["access_levels"]
        return has if op == "has" else not has
    actual: Any = _value_of(rule["field"], facts)
    if op == "exists":
        return actual is not None
    if op == "not_exists":
        return actual is None
    if op == "eq":
        return bool(actual == expected)
    if op == "ne":
        return bool(actual != expected)
    if op == "in":
        return actual in expected
    if op == "not_in":
        return actual not in expected
    if not isinstance(actual, (int, float)) or isinstance(actual, bool):
        return False
    return bool(actual > expected if op == "gt" else actual < expected)


def audience_matches(rules: list[dict[str, Any]], facts: dict[str, Any]) -> bool:
    return all(rule_matches(rule, facts) for rule in rules)


def choose_target(
    targets: list[dict[str, Any]], audiences: dict[str, list[dict[str, Any]]], facts: dict[str, Any]
) -> dict[str, Any] | None:
    """The first target, in priority order, whose audience the profile is in (no audience: everyone)."""
    for target in targets:
        audience = target.get("audience_id")
        if audience is None or audience_matches(audiences[audience], facts):
            return target
    return None


def assign_variation(ab_test_id: str, profile_id: str, variations: list[dict[str, Any]]) -> dict[str, Any]:
    """The variation a profile sees in an A/B test: the same on every call and every server.

    The profile's bucket is a hash of the test and profile ids, mapped onto the
    weights in their order.
    """
    total = sum(variation["weight"] for variation in variations)
    digest = hashlib.sha256(f"{ab_test_id}:{profile_id}".encode()).digest()
    bucket = int.from_bytes(digest[:8], "big") % total
    for variation in variations:
        bucket -= variation["weight"]
        if bucket < 0:
            return variation
    raise AssertionError("weights add up to total")


def remote_config(configs: dict[str, dict[str, Any]], locale: str | None) -> dict[str, Any] | None:
    """The config for a locale: exact, then its language, then English, then the first there is."""
    if not configs:
        return None
    candidates = []
    if locale:
        normal = locale.replace("-", "_")
        candidates += [normal, normal.split("_")[0]]
    candidates.append("en")
    for lang in candidates:
        if lang in configs:
            return {"lang": lang, "data": configs[lang]}
    lang = sorted(configs)[0]
    return {"lang": lang, "data": configs[lang]}


def z_test(conversions_a: int, views_a: int, conversions_b: int, views_b: int) -> float | None:
    """Two-sided p-value that two conversion rates differ (two-proportion z-test); None without data."""
    if views_a == 0 or views_b == 0:
        return None
    pooled = (conversions_a + conversions_b) / (views_a + views_b)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / views_a + 1 / views_b))
    if spread == 0:
        return None
    z = (conversions_a / views_a - conversions_b / views_b) / spread
    return math.erfc(abs(z) / math.sqrt(2))
