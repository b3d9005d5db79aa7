"""Refund Saver request bodies: a profile's settings (the contract's), and the app's."""

from pydantic import StrictBool

from subledger.core.fields import Strict
from subledger.refund_saver.rules import AppPreference, ConsentPolicy, ProfilePreference


class ProfileSettingsIn(Strict):
    """The contract's RefundSaverSettingsRequest: what is sent changes, null undoes it."""

    custom_preference: ProfilePreference | None = None
    consent: StrictBool | None = None


class AppSettingsIn(Strict):
    enabled: StrictBool = None  # type: ignore[assignment]  # absent: unchanged; null is refused
    default_preference: AppPreference = None  # type: ignore[assignment]
    consent_policy: ConsentPolicy = None  # type: ignore[assignment]
