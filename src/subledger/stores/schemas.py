"""Request bodies that connect an app to a store (the admin API's and the dashboard's forms)."""

from typing import Literal

from pydantic import StrictBool

from subledger.core.fields import Str255, Strict


class StripeConnectionIn(Strict):
    """What to change (a field left out stays as it is; an empty secret is forgotten)."""

    secret_key: Str255 | None = None
    webhook_secret: Str255 | None = None
    test_secret_key: Str255 | None = None
    test_webhook_secret: Str255 | None = None
    profile_source: Literal["metadata", "email", "client_reference_id"] | None = None


class PaddleConnectionIn(Strict):
    """What to change (a field left out stays as it is; an empty secret is forgotten)."""

    api_key: Str255 | None = None
    notification_secret: Str255 | None = None
    sandbox: StrictBool | None = None
    match_email: StrictBool | None = None
