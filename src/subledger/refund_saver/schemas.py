"""Refund Saver request bodies: a profile's settings (the contract's), and the app's."""

from typing import Literal

from pydantic import StrictBool

from subledger.core.fields import Strict
from subledger.refund_saver.rules import APP_PREFERENCES, CONSENT_POLICIES, PROFILE_PREFERENCES


class ProfileSettingsIn(Strict):
    """The contract's RefundSaverSettingsRequest: what is sent changes, null undoes it."""

    custom_preference: Literal[PROFILE_PREFERENCES] | None = None
    consent: StrictBool | None = None


class AppSettingsIn(Strict):
    enabled: StrictBool = None
    default_preference: Literal[APP_PREFERENCES] = None
    consent_policy: Literal[CONSENT_POLICIES] = None
