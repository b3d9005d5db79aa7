"""Refund Saver rules: consent, the preference given to Apple, and how much of a purchase was
used. Pure: no I/O."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Literal, get_args

from subledger.catalog.rules import LIFETIME, period_end

# What a profile may say of itself (the contract's custom_preference).
ProfilePreference = Literal["grant", "no_preference", "decline"]
PROFILE_PREFERENCES = get_args(ProfilePreference)
# The app's default: decline a transaction's first request and grant the next ones, always decline,
# always grant, grant the unused share, or say nothing.
AppPreference = Literal["decline_first", "decline", "grant", "grant_prorated", "no_preference"]
APP_PREFERENCES = get_args(AppPreference)
# Whether a profile that never said is taken to consent (opt_out) or not (opt_in).
ConsentPolicy = Literal["opt_out", "opt_in"]
CONSENT_POLICIES = get_args(ConsentPolicy)
# Apple counts consumption in thousandths of a percent.
MILLIUNITS = 100_000


@dataclass(frozen=True)
class AppSettings:
    enabled: bool = False
    default_preference: str = "decline_first"
    consent_policy: str = "opt_out"


def consented(consent: bool | None, policy: str) -> bool:
    """The profile's word, or the app's policy for those who gave none."""
    return consent if consent is not None else policy == "opt_out"


def consumed_share(purchased_at: datetime, period: str | None, now: datetime) -> Decimal | None:
    """How much of a purchase's access period has passed (0 to 1); None for a purchase with no
    period to measure (lifetime, consumable, or not in the catalog)."""
    if period is None or period == LIFETIME:
        return None
    end = period_end(purchased_at, period)
    assert end is not None  # only a lifetime period has no end
    total = (end - purchased_at).total_seconds()
    elapsed = (now - purchased_at).total_seconds()
    return min(max(Decimal(elapsed) / Decimal(total), Decimal(0)), Decimal(1))


@dataclass(frozen=True)
class Answer:
    """What Apple is told: a preference (``decline``, ``grant``, ``grant_prorated``; None for none)
    and the share consumed, in milliunits (None when not measured, or Apple measures it)."""

    preference: str | None
    consumption: int | None


def answer(own: str | None, default: str, earlier_requests: int, auto_renewable: bool, share: Decimal | None) -> Answer:
    """The answer to a consumption request: the profile's own preference, else the app's default.
    A prorated refund needs a partly used purchase: one used up is declined, one untouched granted
    in full; Apple measures auto-renewable subscriptions itself."""
    consumption = None if share is None or auto_renewable else int(share * MILLIUNITS)
    chosen = own or default
    if chosen == "decline_first":
        chosen = "decline" if earlier_requests == 0 else "grant"
    if chosen == "grant_prorated" and not auto_renewable:
        if consumption is None:
            return Answer(None, None)
        if consumption >= MILLIUNITS:
            chosen = "decline"
        elif consumption == 0:
            chosen = "grant"
    return Answer(None if chosen == "no_preference" else chosen, consumption)
