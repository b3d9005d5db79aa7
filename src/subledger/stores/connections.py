"""Connecting an app to a store from a request body, the admin API's or a dashboard form's: each
body's call, to be run with (runtime, app_id) in a write."""

from collections.abc import Callable
from functools import partial
from typing import Any
from uuid import UUID

from subledger.core.runtime import Runtime
from subledger.stores.apple import service as apple_service
from subledger.stores.google import service as google_service
from subledger.stores.paddle import service as paddle_service
from subledger.stores.schemas import (
    AppStoreConnectionIn,
    PaddleConnectionIn,
    PlayStoreConnectionIn,
    StripeConnectionIn,
)
from subledger.stores.stripe import service as stripe_service

ConnectionIn = AppStoreConnectionIn | PlayStoreConnectionIn | StripeConnectionIn | PaddleConnectionIn


def connect(body: ConnectionIn) -> Callable[[Runtime, UUID], dict[str, Any]]:
    """The call that applies ``body`` (its root certificates decoded first: a 400 for one that is not)."""
    if isinstance(body, AppStoreConnectionIn):
        roots = [apple_service.certificate_from_text(text) for text in body.root_certificates or ()]
        return partial(
            apple_service.configure, **body.model_dump(exclude={"root_certificates"}), root_certificates=roots or None
        )
    if isinstance(body, PlayStoreConnectionIn):
        fields = body.model_dump(exclude={"service_account"})
        return partial(_connect_play_store, **fields, service_account_json=body.service_account)
    configure = stripe_service.configure if isinstance(body, StripeConnectionIn) else paddle_service.configure
    return partial(configure, **body.model_dump())


def _connect_play_store(rt: Runtime, app_id: UUID, **fields: Any) -> dict[str, Any]:
    """Google Play's settings, and the Pub/Sub push path to give Google (it holds a secret token)."""
    connected = google_service.configure(rt, app_id, **fields)
    return {**connected, "push_path": google_service.push_path(rt, app_id)}
