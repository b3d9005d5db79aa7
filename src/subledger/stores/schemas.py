"""Request bodies that connect an app to a store (the admin API's and the dashboard's forms)."""

from typing import Annotated, Literal

from pydantic import Field, StrictBool, StringConstraints

from subledger.core.fields import Str255, Strict

# A key file's text: a .p8 key is about 250 characters, a service account's JSON about 2,400.
KeyFile = Annotated[str, StringConstraints(strict=True, max_length=10_000)]


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


class AppStoreConnectionIn(Strict):
    """What to change (a field left out stays as it is; an empty private key is forgotten)."""

    bundle_id: Str255 | None = None
    app_apple_id: Annotated[int, Field(strict=True, ge=1, le=2**63 - 1)] | None = None
    # Apple's root certificates, each PEM or the base64 of its DER (the .cer file Apple publishes).
    root_certificates: Annotated[list[KeyFile], Field(min_length=1, max_length=10)] | None = None
    issuer_id: Str255 | None = None  # the App Store Connect API key: issuer, key id, the .p8's text
    key_id: Str255 | None = None
    private_key: KeyFile | None = None


class PlayStoreConnectionIn(Strict):
    """What to change (a field left out stays as it is). The push subscription's service account
    and audience go together; both empty: pushes prove themselves by the path's token again."""

    package_name: Str255 | None = None
    service_account: KeyFile | None = None  # the service account's JSON key file
    push_service_account: Str255 | None = None
    push_audience: Str255 | None = None
